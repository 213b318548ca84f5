// otel-audit embeddable viewer: mounts the tenant-facing audit log (GET /viewer) in an iframe.
// No framework, no build step. Load it from the receiver and give it a token your backend minted
// (POST /api/viewer-tokens):
//   <div id="audit-log"></div>
//   <script src="https://audit.example.com/viewer/embed.js"></script>
//   <script>OtelAuditViewer.mount(document.getElementById("audit-log"), { token });</script>
// or declaratively: <div data-otel-audit-viewer data-token="..."></div> (mounted on load).
// The token travels in the iframe URL's fragment, which browsers never send to a server.
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = script ? new URL(script.src, location.href).origin : location.origin;

  function mount(host, options) {
    if (!host || !options || !options.token) throw new Error("OtelAuditViewer.mount(element, { token })");
    var frame = document.createElement("iframe");
    frame.src = origin + "/viewer#token=" + encodeURIComponent(options.token);
    frame.title = options.title || "Audit log";
    frame.referrerPolicy = "no-referrer";
    frame.style.width = "100%";
    frame.style.border = "0";
    frame.style.height = options.height || "720px";
    host.replaceChildren(frame);
    return frame;
  }

  function mountAll() {
    var hosts = document.querySelectorAll("[data-otel-audit-viewer]");
    for (var i = 0; i < hosts.length; i++) {
      var host = hosts[i];
      if (host.dataset.token) mount(host, { token: host.dataset.token, height: host.dataset.height });
    }
  }

  window.OtelAuditViewer = { mount: mount };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
