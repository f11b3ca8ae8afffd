/* QR panel and campaign ZIP: preview and downloads of styled QR codes. No dependencies.
   Without this script the forms still work: Preview and the downloads post the form. */
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]');
  var LOGO_LEVELS = { Q: true, H: true };

  function statusOf(form) { return form.querySelector('[role="status"]'); }

  function say(form, text) {
    var el = statusOf(form);
    if (el) { el.textContent = text; }
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (el) { el.textContent = ""; el.hidden = true; });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function showError(form, error) {
    clearErrors(form);
    var field = (error && error.field) || "form";
    var message = (error && error.message) || "The QR code could not be made.";
    var slot = form.querySelector('[data-error-for="' + field + '"]') || form.querySelector('[data-error-for="form"]');
    if (slot) { slot.textContent = message; slot.hidden = false; }
    var input = form.querySelector('[name="' + field + '"]');
    if (input) { input.setAttribute("aria-invalid", "true"); }
    say(form, "Not made: " + message);
  }

  function post(form, url, extra) {
    var data = new FormData(form);
    Object.keys(extra || {}).forEach(function (key) { data.set(key, extra[key]); });
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf ? csrf.content : "", "X-Requested-With": "fetch" }
    }).then(function (resp) {
      var type = resp.headers.get("Content-Type") || "";
      if (resp.ok && type.indexOf("application/json") === -1) {
        return resp.blob().then(function (blob) { return { blob: blob, resp: resp }; });
      }
      return resp.json().then(function (body) { throw body.error || {}; }, function () {
        throw { message: "The server answered " + resp.status + "." };
      });
    }, function () { throw { message: "The server could not be reached." }; });
  }

  function fileName(resp, fallback) {
    var match = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "");
    return match ? match[1] : fallback;
  }

  function download(form, button) {
    var question = button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { return; }
    var url = button.getAttribute("formaction") || form.getAttribute("action");
    button.disabled = true;
    say(form, "Making the file…");
    post(form, url).then(function (result) {
      clearErrors(form);
      var href = URL.createObjectURL(result.blob);
      var link = document.createElement("a");
      link.href = href;
      link.download = fileName(result.resp, "qr");
      link.hidden = true;
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(function () { URL.revokeObjectURL(href); }, 60000);
      say(form, "Downloaded " + link.download + ".");
    }, function (error) { showError(form, error); }).then(function () { button.disabled = false; });
  }

  var previewUrl = null;
  var sequence = 0;

  function preview(form) {
    var img = document.getElementById(form.getAttribute("data-preview-img"));
    if (!img) { return; }
    var mine = ++sequence;
    img.classList.add("stale");
    post(form, form.getAttribute("data-preview-url"), { size: "240", preview: "1" }).then(function (result) {
      if (mine !== sequence) { return; }
      clearErrors(form);
      if (previewUrl) { URL.revokeObjectURL(previewUrl); }
      previewUrl = URL.createObjectURL(result.blob);
      img.src = previewUrl;
      img.classList.remove("stale");
      img.setAttribute("data-styled", "1");
      say(form, "Preview updated.");
    }, function (error) {
      if (mine !== sequence) { return; }
      img.classList.remove("stale");
      showError(form, error);
    });
  }

  document.querySelectorAll("form[data-qr-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = event.submitter;
      if (button && button.hasAttribute("data-download")) { download(form, button); return; }
      preview(form);
    });
    var logo = form.querySelector('input[name="logo"]');
    var ec = form.querySelector('select[name="ec"]');
    if (logo && ec) {
      logo.addEventListener("change", function () {
        if (logo.files.length && !LOGO_LEVELS[ec.value]) {
          ec.value = "H";
          say(form, "Error correction set to H for the logo.");
        }
      });
    }
    if (!form.hasAttribute("data-preview-url")) { return; }
    var timer = null;
    var later = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { preview(form); }, 350);
    };
    form.addEventListener("change", later);
    form.addEventListener("input", later);
  });
})();
