// Starts Swagger UI (/docs) or ReDoc (/redoc) on the page's OpenAPI document. A file, not an inline
// script: the Content-Security-Policy allows scripts from this origin only.
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-openapi-url");
  if (body.getAttribute("data-viewer") === "swagger") {
    window.ui = window.SwaggerUIBundle({
      url: url,
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    });
  } else {
    window.Redoc.init(url, {}, document.getElementById("redoc"));
  }
})();
