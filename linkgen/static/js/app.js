/* linkgen pages: copy buttons, secret reveal, add/remove rows, confirmations. No dependencies. */
(function () {
  "use strict";

  var announce = function (text) {
    var el = document.getElementById("copy-status");
    if (el) { el.textContent = ""; window.setTimeout(function () { el.textContent = text; }, 30); }
  };

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () {
        return fallbackCopy(text);
      });
    }
    return Promise.resolve(fallbackCopy(text));
  }
  window.linkgenCopy = copyText;

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (button) {
      var source = document.getElementById(button.getAttribute("data-copy-target"));
      if (!source) { return; }
      var text = source.textContent;
      copyText(text).then(function (ok) {
        var label = button.getAttribute("data-label") || button.textContent;
        button.setAttribute("data-label", label);
        button.textContent = ok ? "Copied" : "Select and copy";
        button.classList.toggle("copied", ok);
        document.body.setAttribute("data-last-copied", button.getAttribute("data-copy-target"));
        announce(ok ? "Copied to the clipboard." : "Could not copy: select the text and copy it.");
        if (!ok) {
          var range = document.createRange();
          range.selectNodeContents(source);
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
        }
        window.setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1600);
      });
      return;
    }

    var reveal = event.target.closest("[data-reveal]");
    if (reveal) {
      var input = document.getElementById(reveal.getAttribute("data-reveal"));
      if (!input) { return; }
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      reveal.textContent = show ? "Hide" : "Show";
      reveal.setAttribute("aria-pressed", show ? "true" : "false");
      return;
    }

    var add = event.target.closest("[data-add-row]");
    if (add) {
      var list = document.getElementById(add.getAttribute("data-add-row"));
      var tpl = document.getElementById(add.getAttribute("data-row-template"));
      if (!list || !tpl) { return; }
      var row = tpl.content.firstElementChild.cloneNode(true);
      var uid = "row" + Date.now().toString(36) + Math.floor(Math.random() * 1000);
      row.querySelectorAll("[data-id-suffix]").forEach(function (el) {
        el.id = uid + "-" + el.getAttribute("data-id-suffix");
      });
      row.querySelectorAll("[data-for-suffix]").forEach(function (el) {
        el.setAttribute("for", uid + "-" + el.getAttribute("data-for-suffix"));
      });
      list.appendChild(row);
      var first = row.querySelector("input, select");
      if (first) { first.focus(); }
      list.dispatchEvent(new Event("rows-changed", { bubbles: true }));
      return;
    }

    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      var target = remove.closest("[data-row]");
      if (target) {
        var parent = target.parentNode;
        target.remove();
        parent.dispatchEvent(new Event("rows-changed", { bubbles: true }));
      }
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  // Links that ask first (downloading the QR code of a link that expires).
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-confirm]") : null;
    if (link && !window.confirm(link.getAttribute("data-confirm"))) { event.preventDefault(); }
  });

  // Menus (<details data-menu>): open and close without script; a click elsewhere or Escape
  // closes an open one, as people expect of a menu.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      var hadFocus = menu.contains(document.activeElement);
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary && hadFocus) { summary.focus(); }
    });
  });
})();
