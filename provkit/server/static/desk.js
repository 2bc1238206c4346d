// The desk page: ask once for a token (sessionStorage) unless the server is public-read,
// send the chosen image to /desk/record, show the server-rendered record, offer the report.
(function () {
  "use strict";
  var publicRead = document.body.dataset.publicRead === "true";
  var tokenForm = document.getElementById("token-form");
  var form = document.getElementById("check-form");
  var fileInput = document.getElementById("file");
  var drop = document.getElementById("drop");
  var result = document.getElementById("result");
  var errorBox = document.getElementById("error");
  var busy = document.getElementById("busy");
  var download = document.getElementById("download");
  var lastFile = null;

  function token() { return sessionStorage.getItem("provkit-token"); }
  function askToken() { tokenForm.hidden = false; document.getElementById("token").focus(); }
  if (!publicRead && !token()) { askToken(); }

  tokenForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    sessionStorage.setItem("provkit-token", document.getElementById("token").value.trim());
    tokenForm.hidden = true;
    fileInput.focus();
  });

  function showError(text) { errorBox.textContent = text; errorBox.hidden = false; }

  function send(file, wantReport) {
    var data = new FormData();
    data.append("file", file, file.name);
    data.append("pack", document.getElementById("pack").value);
    if (wantReport) { data.append("download", "true"); }
    var headers = {};
    if (token()) { headers["Authorization"] = "Bearer " + token(); }
    return fetch("/desk/record", { method: "POST", body: data, headers: headers }).then(function (resp) {
      if (resp.status === 401) { sessionStorage.removeItem("provkit-token"); askToken(); }
      if (!resp.ok) {
        return resp.json().catch(function () { return { error: resp.statusText }; }).then(function (body) {
          throw new Error(body.error || ("HTTP " + resp.status));
        });
      }
      return wantReport ? resp.blob() : resp.text();
    });
  }

  function check(file) {
    if (!file) { showError("Choose an image first."); return; }
    lastFile = file;
    errorBox.hidden = true; busy.hidden = false; download.disabled = true;
    send(file, false).then(function (html) {
      result.innerHTML = html;
      download.disabled = false;
      result.focus();
    }).catch(function (err) {
      result.innerHTML = "";
      showError("Cannot check " + file.name + ": " + err.message);
    }).finally(function () { busy.hidden = true; });
  }

  form.addEventListener("submit", function (ev) { ev.preventDefault(); check(fileInput.files[0]); });
  fileInput.addEventListener("change", function () { check(fileInput.files[0]); });
  drop.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fileInput.click(); }
  });
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (ev) {
    if (ev.dataTransfer.files.length) { check(ev.dataTransfer.files[0]); }
  });
  download.addEventListener("click", function () {
    if (!lastFile) { return; }
    send(lastFile, true).then(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "provkit-report.html";
      document.body.appendChild(a); a.click(); a.remove();
    }).catch(function (err) { showError("Cannot make the report: " + err.message); });
  });
}());
