// The issue form's live preview: a debounced POST of the form's text to the admin's
// live-preview endpoint, which renders it as a real digest. The HTML goes into a
// sandboxed iframe (no scripts, no same-origin); text and warnings are set as text.
(function () {
  "use strict";
  const panel = document.getElementById("live-preview");
  if (!panel) return;
  const form = panel.closest("form");
  const fields = ["newsletter", "title", "slug", "body"];
  const frame = panel.querySelector("iframe");
  const text = panel.querySelector(".lp-text");
  const subject = panel.querySelector(".lp-subject");
  const warnings = panel.querySelector(".lp-warnings");
  const status = panel.querySelector(".lp-status");
  let timer = null;
  let latest = 0;

  function chosenFiles() {
    const files = [];
    for (const input of form.querySelectorAll('input[type="file"]')) {
      for (const file of input.files || []) files.push([file.name, file.size]);
    }
    return files;
  }

  async function refresh() {
    const request = ++latest;
    const data = new FormData();
    const token = form.querySelector('[name="csrfmiddlewaretoken"]').value;
    for (const name of fields) {
      const field = form.elements[name];
      data.append(name, field ? field.value : "");
    }
    if (panel.dataset.issue) data.append("issue", panel.dataset.issue);
    data.append("files", JSON.stringify(chosenFiles()));
    status.textContent = "Updating…";
    let response, payload;
    try {
      response = await fetch(panel.dataset.url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": token },
      });
      payload = await response.json();
    } catch (error) {
      if (request === latest) status.textContent = "The preview cannot be updated: " + error;
      return;
    }
    if (request !== latest) return; // a newer request is on its way
    if (!response.ok) {
      status.textContent = payload.error || "The preview cannot be updated (" + response.status + ").";
      return;
    }
    frame.srcdoc = payload.html;
    text.textContent = payload.text;
    subject.textContent = payload.subject;
    warnings.replaceChildren(
      ...payload.warnings.map(function (message) {
        const item = document.createElement("li");
        item.className = "warning";
        item.textContent = message;
        return item;
      })
    );
    warnings.hidden = payload.warnings.length === 0;
    status.textContent = payload.warnings.length
      ? "Up to date, " + payload.warnings.length + " warning(s)"
      : "Up to date";
    panel.dataset.state = "ready";
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.addEventListener("input", function (event) {
    if (fields.includes(event.target.name)) soon();
  });
  form.addEventListener("change", function (event) {
    if (event.target.type === "file" || event.target.name === "newsletter") soon();
  });
  refresh();
})();
