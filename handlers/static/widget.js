/* policybot embeddable widget.
 * Paste on any page:  <script src="https://YOUR-HOST/static/widget.js" defer></script>
 * It adds a "政策咨询" button in the bottom-right corner that opens the chat (an iframe of /widget).
 * Optional attributes on the script tag: data-title="按钮文字", data-position="left". */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var origin = new URL(script.src, window.location.href).origin;
  var title = script.getAttribute("data-title") || "政策咨询";
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";
  var frame = null;

  var button = document.createElement("button");
  button.type = "button";
  button.textContent = title;
  button.setAttribute("aria-expanded", "false");
  var s = button.style;
  s.position = "fixed"; s.bottom = "20px"; s[side] = "20px"; s.zIndex = "2147483000";
  s.padding = "12px 18px"; s.border = "0"; s.borderRadius = "24px"; s.cursor = "pointer";
  s.background = "#0b4f9c"; s.color = "#fff"; s.fontSize = "16px"; s.boxShadow = "0 2px 8px rgba(0,0,0,.3)";

  function open() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = origin + "/widget";
      frame.title = title;
      var f = frame.style;
      f.position = "fixed"; f.bottom = "76px"; f[side] = "20px"; f.zIndex = "2147483000";
      f.width = "min(380px, calc(100vw - 24px))"; f.height = "min(620px, calc(100vh - 100px))";
      f.border = "1px solid #d5dbe3"; f.borderRadius = "8px"; f.background = "#fff";
      f.boxShadow = "0 4px 16px rgba(0,0,0,.25)";
      document.body.appendChild(frame);
    } else {
      frame.style.display = frame.style.display === "none" ? "" : "none";
    }
    button.setAttribute("aria-expanded", frame.style.display === "none" ? "false" : "true");
  }

  button.addEventListener("click", open);
  function mount() { document.body.appendChild(button); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
