// The desk page: many files at once. Each dropped or chosen file (a dropped folder is
// walked) gets a row at once; at most LIMIT uploads run together, and each answer fills
// its row (the one-line answer and the decision chip) as it arrives. A row opens its
// card (click, Enter or Space). The card is HTML the server rendered and escaped; the
// pictures it names by URL are fetched with the token, so nothing comes from elsewhere.
(function () {
  "use strict";
  var LIMIT = 3;
  var CHIPS = { allow: "ALLOW", label: "LABEL", review: "REVIEW", deny: "DENY" };
  var publicRead = document.body.dataset.publicRead === "true";
  var tokenForm = document.getElementById("token-form");
  var filesInput = document.getElementById("files");
  var folderInput = document.getElementById("folder");
  var drop = document.getElementById("drop");
  var results = document.getElementById("results");
  var rows = document.getElementById("rows");
  var progress = document.getElementById("progress");
  var errorBox = document.getElementById("error");
  var cardSection = document.getElementById("card");
  var cardBody = document.getElementById("card-body");
  var queue = [];
  var running = 0;
  var total = 0;
  var done = 0;
  var paused = false;
  var current = null;
  var pictures = {};

  function token() { return sessionStorage.getItem("provkit-token"); }
  function headers() { return token() ? { "Authorization": "Bearer " + token() } : {}; }
  function askToken() {
    paused = true;
    tokenForm.hidden = false;
    document.getElementById("token").focus();
  }
  if (!publicRead && !token()) { askToken(); }

  tokenForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    sessionStorage.setItem("provkit-token", document.getElementById("token").value.trim());
    tokenForm.hidden = true;
    paused = false;
    filesInput.focus();
    pump();
  });

  function showError(text) { errorBox.textContent = text; errorBox.hidden = false; }

  function say() {
    progress.textContent = done < total ? "Checked " + done + " of " + total + " files…"
      : "Checked " + total + " of " + total + " files.";
  }

  function localPicture(file) {
    var cell = document.createElement("td");
    cell.className = "pic";
    if (/^image\/(jpeg|png|gif|webp|avif|bmp)$/.test(file.type)) {
      var img = document.createElement("img");
      img.alt = "";  // the file name is in the next cell
      img.width = 56;
      img.src = URL.createObjectURL(file);
      img.addEventListener("error", function () { img.replaceWith(placeholder(file)); });
      cell.appendChild(img);
    } else {
      cell.appendChild(placeholder(file));
    }
    return cell;
  }

  function placeholder(file) {
    var span = document.createElement("span");
    span.className = "nopic";
    var ext = (file.name.split(".").pop() || "").slice(0, 4).toUpperCase();
    span.textContent = ext || "FILE";
    span.setAttribute("aria-hidden", "true");
    return span;
  }

  function addRow(file) {
    var tr = document.createElement("tr");
    tr.tabIndex = 0;
    tr.dataset.state = "waiting";
    tr.setAttribute("aria-selected", "false");
    var name = document.createElement("td");
    name.className = "name";
    name.textContent = file.webkitRelativePath || file.relativePath || file.name;
    var answer = document.createElement("td");
    answer.className = "line";
    answer.textContent = "Waiting…";
    var decision = document.createElement("td");
    decision.className = "decision";
    tr.append(localPicture(file), name, answer, decision);
    tr.file = file;
    tr.addEventListener("click", function () { openCard(tr); });
    tr.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openCard(tr); }
      if (ev.key === "ArrowDown" && tr.nextElementSibling) { ev.preventDefault(); tr.nextElementSibling.focus(); }
      if (ev.key === "ArrowUp" && tr.previousElementSibling) { ev.preventDefault(); tr.previousElementSibling.focus(); }
    });
    rows.appendChild(tr);
    return tr;
  }

  function addFiles(files) {
    if (!files.length) { return; }
    errorBox.hidden = true;
    results.hidden = false;
    files.forEach(function (f) { queue.push(addRow(f)); });
    total += files.length;
    say();
    pump();
  }

  function send(file, wantReport) {
    var data = new FormData();
    data.append("file", file, file.name);
    data.append("pack", document.getElementById("pack").value);
    if (wantReport) { data.append("download", "true"); }
    return fetch("/desk/record", { method: "POST", body: data, headers: headers() });
  }

  function pump() {
    while (!paused && running < LIMIT && queue.length) { check(queue.shift()); }
  }

  function fill(tr, article) {
    var line = tr.querySelector(".line");
    var decision = tr.querySelector(".decision");
    var outcome = article.dataset.outcome;
    tr.card = article;
    if (article.dataset.error) {
      tr.dataset.state = "error";
      line.textContent = "Cannot check: " + article.dataset.error;
      decision.textContent = "—";
      return;
    }
    tr.dataset.state = "done";
    line.textContent = article.dataset.line;
    decision.textContent = "";
    if (CHIPS[outcome]) {
      var chip = document.createElement("span");
      chip.className = "chip chip-" + outcome;
      chip.textContent = CHIPS[outcome];
      decision.appendChild(chip);
    }
  }

  function failed(tr, message) {
    var article = document.createElement("article");
    article.className = "card";
    article.dataset.error = message;
    var h = document.createElement("h2");
    h.tabIndex = -1;
    h.textContent = tr.file.name;
    var p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = "Cannot check " + tr.file.name + ": " + message;
    article.append(h, p);
    fill(tr, article);
  }

  function check(tr) {
    running += 1;
    tr.dataset.state = "checking";
    tr.querySelector(".line").textContent = "Checking…";
    send(tr.file, false).then(function (resp) {
      if (resp.status === 401) {
        sessionStorage.removeItem("provkit-token");
        queue.unshift(tr);
        tr.dataset.state = "waiting";
        tr.querySelector(".line").textContent = "Waiting for a token…";
        askToken();
        return null;
      }
      if (resp.status === 503 && (tr.tries || 0) < 5) {  // busy: wait as asked, then again
        tr.tries = (tr.tries || 0) + 1;
        var wait = Math.min(30, parseFloat(resp.headers.get("Retry-After")) || 2);
        tr.dataset.state = "waiting";
        tr.querySelector(".line").textContent = "Server busy; trying again…";
        setTimeout(function () { queue.unshift(tr); pump(); }, wait * 1000);
        return null;
      }
      if (!resp.ok) {
        return resp.json().catch(function () { return { error: resp.statusText }; }).then(function (body) {
          failed(tr, body.error || ("HTTP " + resp.status));
          return true;
        });
      }
      return resp.text().then(function (html) {
        var t = document.createElement("template");
        t.innerHTML = html;
        var article = t.content.querySelector("article");
        if (article) { fill(tr, article); } else { failed(tr, "the server sent no card"); }
        return true;
      });
    }).catch(function (err) {
      failed(tr, err.message);
      return true;
    }).then(function (finished) {
      running -= 1;
      if (finished) { done += 1; say(); }
      if (current === tr) { openCard(tr); }
      pump();
    });
  }

  function loadPictures(root) {
    root.querySelectorAll("img[data-src]").forEach(function (img) {
      var url = img.dataset.src;
      if (!/^\/v1\//.test(url)) { return; }
      if (pictures[url]) { img.src = pictures[url]; return; }
      fetch(url, { headers: headers() }).then(function (resp) {
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.blob();
      }).then(function (blob) {
        pictures[url] = URL.createObjectURL(blob);
        img.src = pictures[url];
      }).catch(function () { img.classList.add("missing"); });
    });
  }

  function openCard(tr) {
    if (current) { current.setAttribute("aria-selected", "false"); }
    current = tr;
    tr.setAttribute("aria-selected", "true");
    cardSection.hidden = false;
    if (!tr.card) {
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = tr.file.name + " is still being checked; its card opens here when the answer arrives.";
      cardBody.replaceChildren(p);
      return;
    }
    var article = tr.card.cloneNode(true);
    cardBody.replaceChildren(article);
    loadPictures(article);
    var heading = article.querySelector("h2");
    if (heading) { heading.focus(); }
    document.getElementById("download").disabled = !!article.dataset.error;
  }

  document.getElementById("back").addEventListener("click", function () {
    cardSection.hidden = true;
    if (current) { current.focus(); }
  });

  document.getElementById("download").addEventListener("click", function () {
    if (!current) { return; }
    send(current.file, true).then(function (resp) {
      if (!resp.ok) { throw new Error("HTTP " + resp.status); }
      return resp.blob();
    }).then(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "provkit-report.html";
      document.body.appendChild(a); a.click(); a.remove();
    }).catch(function (err) { showError("Cannot make the report: " + err.message); });
  });

  filesInput.addEventListener("change", function () { addFiles(Array.from(filesInput.files)); filesInput.value = ""; });
  folderInput.addEventListener("change", function () { addFiles(Array.from(folderInput.files)); folderInput.value = ""; });
  drop.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); filesInput.click(); }
  });
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.remove("over"); });
  });

  // A dropped folder: walk it (where the browser gives entries), else take the files.
  function walk(entry, prefix, out) {
    return new Promise(function (resolve) {
      if (entry.isFile) {
        entry.file(function (f) { f.relativePath = prefix + f.name; out.push(f); resolve(); },
                   function () { resolve(); });
      } else if (entry.isDirectory) {
        var reader = entry.createReader();
        var all = [];
        (function more() {
          reader.readEntries(function (batch) {
            if (!batch.length) {
              Promise.all(all.map(function (e) { return walk(e, prefix + entry.name + "/", out); })).then(resolve);
              return;
            }
            all = all.concat(Array.from(batch));
            more();
          }, function () { resolve(); });
        }());
      } else { resolve(); }
    });
  }

  drop.addEventListener("drop", function (ev) {
    var items = ev.dataTransfer.items;
    var entries = [];
    if (items && items.length && items[0].webkitGetAsEntry) {
      for (var i = 0; i < items.length; i += 1) {
        var e = items[i].webkitGetAsEntry();
        if (e) { entries.push(e); }
      }
    }
    if (entries.some(function (e) { return e.isDirectory; })) {
      var out = [];
      Promise.all(entries.map(function (e) { return walk(e, "", out); })).then(function () { addFiles(out); });
    } else {
      addFiles(Array.from(ev.dataTransfer.files));
    }
  });
}());
