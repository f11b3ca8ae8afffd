/* The link builder: live preview as fields change, field errors, personalisation picker. */
(function () {
  "use strict";
  var form = document.getElementById("link-form");
  if (!form) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var status = document.getElementById("preview-status");
  var body = document.getElementById("preview-body");
  var timer = null;
  var seq = 0;
  var dedicated = ["deep_link_value", "deep_link_sub1", "deep_link_sub2"];

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#extra-rows [data-row]")); }

  function syncRowErrorKeys() {
    rows().forEach(function (row) {
      var key = row.querySelector("[data-extra-key]").value.trim();
      var slot = row.querySelector(".row-error");
      if (slot) { slot.setAttribute("data-error-for", key ? "params." + key : ""); }
    });
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (el) {
      el.hidden = true; el.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    form.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
  }

  function slotFor(field) {
    var found = null;
    form.querySelectorAll("[data-error-for]").forEach(function (el) {
      if (!found && el.getAttribute("data-error-for") === field) { found = el; }
    });
    var m = /^extra\[(\d+)\]$/.exec(field);
    if (!found && m) {
      var row = rows()[Number(m[1])];
      if (row) { found = row.querySelector(".row-error"); }
    }
    return found || form.querySelector('[data-error-for="*"]');
  }

  function showError(field, message) {
    var slot = slotFor(field);
    slot.textContent = message;
    slot.hidden = false;
    var wrap = slot.closest(".field, .param-row");
    if (wrap) {
      wrap.classList.add("has-error");
      var input = wrap.querySelector("input, select");
      if (input) { input.setAttribute("aria-invalid", "true"); }
    }
  }

  function setText(id, text) { document.getElementById(id).textContent = text; }
  var channel = form.querySelector('[name="channel"]');

  function render(data) {
    clearErrors();
    if (!data.ok) {
      showError(data.error.field, data.error.message);
      status.textContent = "Fix the highlighted field to see the link.";
      status.className = "preview-status status-error";
      body.classList.add("stale");
      return;
    }
    body.hidden = false;
    body.classList.remove("stale");
    var pending = !!(data.pending_short_id || data.pending_link_ref);
    status.textContent = pending ? "Preview: save the link to copy it." : "Ready to save.";
    status.className = "preview-status status-ok";
    var ct = data.clevertap;
    setText("pv-plain", data.plain_url);
    setText("pv-url", ct.url);
    setText("pv-long", data.long_url);
    setText("pv-email", ct.email_html);
    setText("pv-sms", ct.sms_text);
    setText("pv-push", JSON.stringify(ct.push_payload, null, 2));
    document.getElementById("preview-pending").hidden = !pending;
    ["pv-plain", "pv-url", "pv-long", "pv-email", "pv-sms", "pv-push"].forEach(function (id) {
      var button = document.querySelector('[data-copy-target="' + id + '"]');
      button.disabled = pending;
      button.title = pending ? "Save the link to copy it with its ids" : "";
    });
    var expiry = document.getElementById("pv-expiry");
    expiry.textContent = data.expiry_note;
    expiry.className = data.qr_expires ? "notice notice-warn" : "hint";
    showChannel();
    var img = document.getElementById("pv-qr");
    if (data.qr) { img.src = data.qr; img.hidden = false; } else { img.hidden = true; }
    setText("pv-length", "Long URL: " + data.length + " of 2000 characters. Media source: " + data.media_source + ".");
  }

  function refresh() {
    var mine = ++seq;
    syncRowErrorKeys();
    var payload = new FormData(form);
    payload.delete("csrf_token");
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      body: payload,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf ? csrf.content : "", "X-Requested-With": "fetch" }
    }).then(function (resp) {
      if (resp.status === 401) { throw new Error("Your session has ended: log in again."); }
      if (!resp.ok) { throw new Error("The preview is not available right now (" + resp.status + ")."); }
      return resp.json();
    }).then(function (data) {
      if (mine === seq) { render(data); }
    }).catch(function (err) {
      if (mine === seq) {
        status.textContent = err.message;
        status.className = "preview-status status-error";
      }
    });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 200);
  }

  // Only what the chosen channel needs (custom: everything); the other formats stay folded.
  var channelNotes = {
    email: "For an email: paste the link into CleverTap's editor, or the HTML link into the HTML.",
    sms: "For an SMS: paste the text (or the link) into the message; CleverTap fills its placeholders.",
    push: "For a push: the link opens the app (wzrk_dl); paste the payload as the notification's deep link.",
    qr: "For a QR code: download the code from the link's page after saving.",
    custom: "Every format of the link."
  };
  function showChannel() {
    var picked = channel ? channel.value : "custom";
    document.querySelectorAll("#preview-body [data-channels]").forEach(function (el) {
      el.hidden = el.getAttribute("data-channels").split(" ").indexOf(picked) < 0;
    });
    setText("pv-channel-note", channelNotes[picked] || channelNotes.custom);
  }
  var linkText = document.getElementById("f-link_text");
  if (linkText) { linkText.addEventListener("input", schedule); }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("rows-changed", schedule);

  // Media source placeholder follows the channel's default.
  var defaults = { email: "Email", sms: "SMS", push: "Push", qr: "QR", custom: "required for custom" };
  var media = form.querySelector('[name="media_source"]');
  function syncMedia() { if (channel && media) { media.placeholder = defaults[channel.value] || ""; } }
  if (channel) { channel.addEventListener("change", syncMedia); syncMedia(); }

  document.getElementById("p-insert").addEventListener("click", function () {
    var placeholder = document.getElementById("p-placeholder").value;
    var target = document.getElementById("p-target").value;
    var input = null;
    if (dedicated.indexOf(target) >= 0) {
      input = form.querySelector('[name="param_' + target + '"]');
    } else {
      rows().forEach(function (row) {
        if (!input && row.querySelector("[data-extra-key]").value.trim() === target) {
          input = row.querySelector("[data-extra-value]");
        }
      });
      if (!input) {
        document.querySelector('[data-add-row="extra-rows"]').click();
        var all = rows();
        var row = all[all.length - 1];
        row.querySelector("[data-extra-key]").value = target;
        input = row.querySelector("[data-extra-value]");
      }
    }
    input.value = input.value ? input.value + placeholder : placeholder;
    input.focus();
    schedule();
  });

  refresh();
})();
