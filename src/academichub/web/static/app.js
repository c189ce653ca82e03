/* AcademicHub: small progressive enhancements. Everything works without this file. */
(function () {
  "use strict";

  // Hide the "more" toggle on abstracts that fit in their four lines anyway.
  function markShortAbstracts() {
    var blocks = document.querySelectorAll(".abstract.is-long");
    for (var i = 0; i < blocks.length; i++) {
      var block = blocks[i];
      var toggle = block.querySelector(".abstract-toggle");
      var textEl = block.querySelector(".abstract-text");
      if (!toggle || !textEl || toggle.checked) continue;
      var fits = textEl.scrollHeight <= textEl.clientHeight + 2;
      block.classList.toggle("fits", fits);
    }
  }

  // A formula wider than its line scrolls in its own box (app.css): such a box takes the
  // keyboard's focus, so it can be scrolled without a pointer; one that fits is no tab stop.
  function markScrollingMath() {
    var formulas = document.querySelectorAll("math");
    for (var i = 0; i < formulas.length; i++) {
      var formula = formulas[i];
      if (formula.scrollWidth > formula.clientWidth + 1) {
        if (!formula.hasAttribute("tabindex")) formula.setAttribute("tabindex", "0");
      } else if (formula.getAttribute("tabindex") === "0") {
        formula.removeAttribute("tabindex");
      }
    }
  }

  var resizeTimer = null;
  function onResize() {
    if (resizeTimer) window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(function () {
      markShortAbstracts();
      markScrollingMath();
    }, 150);
  }

  // "/" focuses the search box, as on many sites; Escape leaves it.
  function onKey(event) {
    var search = document.getElementById("q");
    if (!search) return;
    var tag = (event.target && event.target.tagName) || "";
    var typing = tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.target.isContentEditable;
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === "Escape" && event.target === search) {
      search.blur();
    }
  }

  // Panels marked data-remember (the feed's briefing) open or closed as the reader last left them.
  // "toggle" is dispatched as a later task, so a reader who folds the panel and reloads at once can
  // leave before it runs: leaving the page writes down a state that differs from the one last kept.
  function rememberPanels() {
    var panels = document.querySelectorAll("details[data-remember]");
    for (var i = 0; i < panels.length; i++) {
      (function (panel) {
        var key = "academichub:" + panel.getAttribute("data-remember");
        try {
          var stored = window.localStorage.getItem(key);
          if (stored === "open") panel.open = true;
          else if (stored === "closed") panel.open = false;
        } catch (e) { /* storage refused: the default stands */ }
        var kept = panel.open;
        function keep() {
          if (panel.open === kept) return;
          kept = panel.open;
          try { window.localStorage.setItem(key, kept ? "open" : "closed"); } catch (e) { /* ignore */ }
        }
        panel.addEventListener("toggle", keep);
        window.addEventListener("pagehide", keep);
      })(panels[i]);
    }
  }

  // Back from a feedback form (#paper-N): focus that card, so the keyboard goes on from there.
  function focusTarget() {
    var match = /^#paper-\d+$/.exec(window.location.hash);
    var target = match && document.getElementById(window.location.hash.slice(1));
    if (target && target.focus) target.focus({ preventScroll: true });
  }

  function init() {
    rememberPanels();
    focusTarget();
    markShortAbstracts();
    markScrollingMath();
    window.addEventListener("resize", onResize);
    document.addEventListener("keydown", onKey);
    document.documentElement.classList.add("js");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

/* Radars: a form marked data-live is posted in the background and the page's regions
   ([data-region]: the editor, the preview, the feed) are replaced by the answer's, so a rule,
   a seed or a like refreshes the ranking without a reload. Without this, the same forms post
   and redirect back (POST/redirect/GET). */
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser || !window.FormData || !window.history) return;
  var busy = false;

  // A signed-in session's CSRF token (base.html's meta tag), sent with every state-changing fetch.
  function csrfHeaders() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? { "X-CSRF-Token": meta.getAttribute("content") } : {};
  }

  function swapRegions(doc) {
    var fresh = doc.querySelectorAll("[data-region]");
    var swapped = 0;
    for (var i = 0; i < fresh.length; i++) {
      var name = fresh[i].getAttribute("data-region");
      var old = document.querySelector('[data-region="' + name + '"]');
      if (old) {
        old.replaceWith(document.importNode(fresh[i], true));
        swapped++;
      }
    }
    return swapped;
  }

  function plainSubmit(form, submitter) {
    if (submitter && submitter.name) {
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = submitter.name;
      hidden.value = submitter.value;
      form.appendChild(hidden);
    }
    form.submit();
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form || form.tagName !== "FORM" || !form.hasAttribute("data-live")) return;
    event.preventDefault();
    if (busy) return;
    busy = true;
    var submitter = event.submitter || null;
    var data = new FormData(form);
    if (submitter && submitter.name) data.append(submitter.name, submitter.value);
    var focusId = document.activeElement && document.activeElement.id;
    // Feedback on a card: focus stays on that card, or on the one now in its place (a liked or
    // dismissed paper leaves the batch), never on the page's body.
    var card = form.closest ? form.closest("article.card, article.paper") : null;
    var cardId = card && card.id;
    var cardIndex = card ? Array.prototype.indexOf.call(document.querySelectorAll("article.card"), card) : -1;
    document.documentElement.classList.add("is-busy");
    // getAttribute: a field named "action" (the feedback forms have one) shadows form.action
    fetch(form.getAttribute("action") || window.location.pathname, { method: "POST", body: data, credentials: "same-origin", headers: csrfHeaders() })
      .then(function (response) {
        return response.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          if (!swapRegions(doc)) {
            plainSubmit(form, submitter);
            return;
          }
          if (response.ok && response.redirected && response.url) {
            window.history.replaceState(null, "", response.url);
          }
          var again = focusId && document.getElementById(focusId);
          if (cardId) again = focusCard(cardId, cardIndex);
          if (again && again.focus) again.focus({ preventScroll: !!cardId });
          window.dispatchEvent(new Event("resize"));  // re-measure the abstracts
        });
      })
      .catch(function () {
        plainSubmit(form, submitter);
      })
      .then(function () {
        busy = false;
        document.documentElement.classList.remove("is-busy");
      });
  }

  function focusCard(cardId, cardIndex) {
    var same = document.getElementById(cardId);
    if (same) return same;
    var cards = document.querySelectorAll("article.card");
    var next = cards[cardIndex] || cards[cardIndex - 1];
    if (next) {
      if (next.scrollIntoView) next.scrollIntoView({ block: "nearest" });
      return next;
    }
    var heading = document.getElementById("feed-heading");
    if (heading && !heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    return heading;
  }

  // A new radar batch is shown at a URL without its number; give the address bar the number,
  // so a reload shows the same batch instead of asking for the next one.
  function canonical() {
    var el = document.querySelector("[data-canonical]");
    if (!el) return;
    var url = el.getAttribute("data-canonical");
    if (url && url.charAt(0) === "/" && url !== window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
    }
  }

  document.addEventListener("submit", onSubmit);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", canonical);
  } else {
    canonical();
  }
})();

/* Citations: a "copy" button beside each citation text (the text itself is there without JavaScript). */
(function () {
  "use strict";

  function copyLabel() {
    return document.documentElement.lang.indexOf("zh") === 0 ? "复制" : "Copy";
  }

  function copiedLabel() {
    return document.documentElement.lang.indexOf("zh") === 0 ? "已复制" : "Copied";
  }

  function addButtons(root) {
    var blocks = root.querySelectorAll("[data-copy]");
    for (var i = 0; i < blocks.length; i++) {
      var block = blocks[i];
      if (block.getAttribute("data-copy-ready")) continue;
      block.setAttribute("data-copy-ready", "1");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = copyLabel();
      button.addEventListener("click", (function (source, self) {
        return function () {
          var text = source.textContent;
          if (navigator.clipboard && navigator.clipboard.writeText) {
            navigator.clipboard.writeText(text).then(function () { self.textContent = copiedLabel(); }, function () {});
          }
        };
      })(block, button));
      block.parentNode.insertBefore(button, block.nextSibling);
    }
  }

  function init() { addButtons(document); }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
