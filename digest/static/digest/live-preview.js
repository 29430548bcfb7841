// The issue editor's desk. The Body row and the live preview share the screen from 1100 px
// (editor.css); below that, two tabs switch between them. The preview is a debounced POST of
// the form's text to the admin's live-preview endpoint, which renders it as a real digest.
// Its HTML goes into an iframe sandboxed without scripts (same origin only so this page can
// scroll it to the section the cursor is in); text and warnings are set as text.
(function () {
  "use strict";
  const desk = document.getElementById("desk");
  const panel = document.getElementById("live-preview");
  if (!desk || !panel) return;
  const form = panel.closest("form");
  const body = form.elements.body;
  const fields = ["newsletter", "title", "slug", "body"];
  const frame = panel.querySelector("iframe");
  const box = panel.querySelector(".lp-frame-box");
  const text = panel.querySelector(".lp-text");
  const subject = panel.querySelector(".lp-subject");
  const warnings = panel.querySelector(".lp-warnings");
  const status = panel.querySelector(".lp-status");
  const DEBOUNCE_MS = 150;
  const DESKTOP_PX = 680; // the email's 640 px card and its margins
  let timer = null;
  let latest = 0;
  let inFlight = null;

  // The desk goes where the Body row was, with the row inside it.
  const row = body && body.closest(".form-row");
  if (row) {
    row.before(desk);
    document.getElementById("desk-write").append(row);
  }

  // ---------------------------------------------------------------- tabs (narrow screens)
  const tabs = Array.from(desk.querySelectorAll('[role="tab"]'));
  function select(tab, focus) {
    for (const other of tabs) {
      const chosen = other === tab;
      other.setAttribute("aria-selected", String(chosen));
      other.tabIndex = chosen ? 0 : -1;
    }
    desk.dataset.tab = tab.id === "desk-tab-preview" ? "preview" : "write";
    if (focus) tab.focus();
    if (desk.dataset.tab === "preview") {
      fit();
      follow();
    }
  }
  for (const tab of tabs) {
    tab.addEventListener("click", function () { select(tab, false); });
    tab.addEventListener("keydown", function (event) {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) {
        event.preventDefault();
        select(tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length], true);
      } else if (event.key === "Home" || event.key === "End") {
        event.preventDefault();
        select(event.key === "Home" ? tabs[0] : tabs[tabs.length - 1], true);
      }
    });
  }

  // ---------------------------------------------------------------- phone or desktop width
  const widthButtons = Array.from(panel.querySelectorAll(".lp-widths button"));
  for (const button of widthButtons) {
    button.addEventListener("click", function () {
      for (const other of widthButtons) other.setAttribute("aria-pressed", String(other === button));
      panel.dataset.width = button.dataset.width;
      fit();
      follow();
    });
  }
  // The desktop view is drawn at its real width and scaled down to fit the pane.
  function fit() {
    const zoom = Math.min(1, box.clientWidth / DESKTOP_PX) || 1;
    box.style.setProperty("--lp-zoom", zoom.toFixed(4));
  }
  new ResizeObserver(fit).observe(box);

  // ---------------------------------------------------------------- follow the cursor's section
  // The heading the cursor is under: its number among the body's ATX headings (code fences
  // skipped) and its text; -1 before the first one.
  function sectionAt(source, position) {
    let index = -1, title = "", fence = "", offset = 0;
    for (const line of source.split("\n")) {
      if (offset > position) break;
      offset += line.length + 1;
      const opened = /^ {0,3}(`{3,}|~{3,})/.exec(line);
      if (fence) {
        if (opened && opened[1][0] === fence[0] && opened[1].length >= fence.length) fence = "";
        continue;
      }
      if (opened) { fence = opened[1]; continue; }
      const heading = /^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$/.exec(line);
      if (heading) { index += 1; title = heading[1]; }
    }
    return { index, title };
  }
  function squash(value) { return value.replace(/[`*_~\\]/g, "").replace(/\s+/g, " ").trim(); }
  let followed = null;
  function follow() {
    const doc = frame.contentDocument;
    const win = frame.contentWindow;
    if (!body || !doc || !win || !doc.body) return;
    const section = sectionAt(body.value, body.selectionStart);
    const key = section.index + "\u0000" + section.title;
    const headings = Array.from(
      doc.querySelectorAll("td.content :is(h1,h2,h3,h4,h5,h6):not(.issue-title)")
    );
    let target = null;
    if (section.index >= 0) {
      const wanted = squash(section.title);
      target = headings[section.index];
      if (!target || squash(target.textContent) !== wanted) {
        target = headings.find(function (h) { return squash(h.textContent) === wanted; }) || target || null;
      }
    }
    const top = target ? target.getBoundingClientRect().top + win.scrollY - 12 : 0;
    win.scrollTo(0, Math.max(0, top));
    panel.dataset.section = String(section.index);
    followed = key;
  }
  if (body) {
    const moved = function () {
      const section = sectionAt(body.value, body.selectionStart);
      if (section.index + "\u0000" + section.title !== followed) follow();
    };
    body.addEventListener("keyup", moved);
    body.addEventListener("click", moved);
    body.addEventListener("focus", moved);
  }
  frame.addEventListener("load", follow);

  // ---------------------------------------------------------------- the preview itself
  function chosenFiles() {
    const files = [];
    for (const input of form.querySelectorAll('input[type="file"][name]')) {
      for (const file of input.files || []) files.push([file.name, file.size]);
    }
    return files;
  }

  async function refresh() {
    const request = ++latest;
    if (inFlight) inFlight.abort(); // the server need not finish a render nobody will see
    inFlight = new AbortController();
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
        signal: inFlight.signal,
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
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  form.addEventListener("input", function (event) {
    if (fields.includes(event.target.name)) soon();
  });
  form.addEventListener("change", function (event) {
    if ((event.target.type === "file" && event.target.name) || event.target.name === "newsletter") soon();
  });
  // On a phone, the phone's width first.
  if (window.matchMedia("(max-width: 700px)").matches) widthButtons[0].click();
  fit();
  refresh();
})();
