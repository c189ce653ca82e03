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

  var resizeTimer = null;
  function onResize() {
    if (resizeTimer) window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(markShortAbstracts, 150);
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

  function init() {
    markShortAbstracts();
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
