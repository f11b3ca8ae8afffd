/* Bulk import: parse on the server, send the rows in chunks, move the progress bar, list errors. */
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) { return; }
  var csrf = form.querySelector('[name="csrf_token"]').value;
  var chunk = Number(form.getAttribute("data-chunk")) || 100;
  var wrap = document.getElementById("import-progress");
  var bar = document.getElementById("import-bar");
  var count = document.getElementById("import-count");
  var label = document.getElementById("import-label");
  var result = document.getElementById("import-result");
  var summary = document.getElementById("import-summary");
  var tbody = document.querySelector("#import-errors tbody");
  var errorsWrap = document.getElementById("import-errors-wrap");
  var createdBody = document.querySelector("#import-created tbody");
  var createdWrap = document.getElementById("import-created-wrap");
  var linkBase = form.getAttribute("data-link-url");
  var fileError = document.getElementById("f-file-err");
  var headers = { "X-CSRFToken": csrf, "X-Requested-With": "fetch" };

  function cell(tr, text, name, code) {
    var td = document.createElement("td");
    td.setAttribute("data-label", name);
    if (code) { var c = document.createElement("code"); c.textContent = text; td.appendChild(c); }
    else { td.textContent = text; }
    tr.appendChild(td);
  }

  function addCreated(r) {
    var n = createdBody.children.length + 1;
    var tr = document.createElement("tr");
    cell(tr, String(r.row), "Line");
    var campaign = document.createElement("td");
    campaign.setAttribute("data-label", "Campaign");
    var a = document.createElement("a");
    a.href = linkBase.replace("__id__", encodeURIComponent(r.link.id));
    a.textContent = r.link.campaign || r.link.channel;
    campaign.appendChild(a);
    tr.appendChild(campaign);
    var url = document.createElement("td");
    url.setAttribute("data-label", "Link");
    url.className = "link-cell";
    var code = document.createElement("code");
    code.id = "cp-import-" + n;
    code.className = "url-preview";
    code.textContent = r.link.short_url || r.link.long_url;
    url.appendChild(code);
    tr.appendChild(url);
    var copy = document.createElement("td");
    copy.setAttribute("data-label", "Copy");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-small";
    button.setAttribute("data-copy-target", code.id);
    button.textContent = "Copy";
    copy.appendChild(button);
    tr.appendChild(copy);
    createdBody.appendChild(tr);
  }

  function fail(message) {
    fileError.textContent = message;
    fileError.hidden = false;
    wrap.hidden = true;
    form.querySelector("button").disabled = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = form.querySelector('[name="file"]').files[0];
    fileError.hidden = true;
    if (!file) { fail("Choose a CSV file to import."); return; }
    form.querySelector("button").disabled = true;
    tbody.textContent = "";
    createdBody.textContent = "";
    result.hidden = true;
    wrap.hidden = false;
    bar.value = 0;
    label.textContent = "Reading " + file.name + "…";
    var data = new FormData();
    data.append("file", file);
    fetch(form.getAttribute("data-parse-url"), { method: "POST", body: data, headers: headers, credentials: "same-origin" })
      .then(function (resp) { if (!resp.ok) { throw new Error("The file could not be sent (" + resp.status + ")."); } return resp.json(); })
      .then(function (parsed) {
        if (!parsed.ok) { fail(parsed.error); return null; }
        return run(parsed.rows);
      })
      .catch(function (err) { fail(err.message); });
  });

  function run(rows) {
    var total = rows.length, done = 0, created = 0, failed = 0;
    label.textContent = "Importing " + total + " row" + (total === 1 ? "" : "s") + "…";
    function next() {
      if (done >= total) { return Promise.resolve(); }
      var part = rows.slice(done, done + chunk);
      return fetch(form.getAttribute("data-chunk-url"), {
        method: "POST",
        body: JSON.stringify({ rows: part }),
        headers: Object.assign({ "Content-Type": "application/json" }, headers),
        credentials: "same-origin"
      }).then(function (resp) {
        if (!resp.ok) { throw new Error("Import stopped at row " + (done + 1) + " (" + resp.status + ")."); }
        return resp.json();
      }).then(function (out) {
        created += out.created;
        failed += out.failed;
        out.results.forEach(function (r) {
          if (r.ok) { addCreated(r); return; }
          var tr = document.createElement("tr");
          cell(tr, String(r.row), "Line");
          cell(tr, r.error.field || "", "Field", true);
          cell(tr, r.error.message, "Error");
          tbody.appendChild(tr);
        });
        done += part.length;
        bar.value = Math.round(done * 100 / total);
        count.textContent = done + " of " + total + " rows";
        return next();
      });
    }
    return next().then(function () {
      label.textContent = "Import finished";
      summary.textContent = created + " link" + (created === 1 ? "" : "s") + " created, " + failed + " row" + (failed === 1 ? "" : "s") + " with errors.";
      errorsWrap.hidden = failed === 0;
      createdWrap.hidden = created === 0;
      result.hidden = false;
      form.querySelector("button").disabled = false;
      form.reset();
    });
  }
})();
