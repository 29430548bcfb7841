// Images in the issue editor: a file chosen with the button or dropped on the Body, described
// (alt text is required), uploaded into the newsletter's media library, and its Markdown put
// in at the cursor. Or one from the library, inserted again.
(function () {
  "use strict";
  const tools = document.getElementById("image-tools");
  if (!tools) return;
  const form = tools.closest("form");
  const body = form.elements.body;
  const newsletter = form.elements.newsletter;
  const file = document.getElementById("image-file");
  const alt = document.getElementById("image-alt");
  const status = tools.querySelector(".image-status");
  const choice = document.getElementById("image-library-choice");
  const write = document.getElementById("desk-write");
  let caret = body ? { start: body.value.length, end: body.value.length } : null;
  let library = [];

  function say(message, isError) {
    status.textContent = message;
    status.classList.toggle("error", Boolean(isError));
  }

  function remember() {
    caret = { start: body.selectionStart, end: body.selectionEnd };
  }
  if (body) {
    for (const name of ["keyup", "click", "select", "blur", "input"]) body.addEventListener(name, remember);
  }

  // The Markdown goes in as a paragraph of its own, where the cursor was, and the preview follows.
  function insert(markdown) {
    const value = body.value;
    const start = Math.min(caret.start, value.length);
    const end = Math.min(caret.end, value.length);
    const before = value.slice(0, start);
    const after = value.slice(end);
    const lead = before === "" || before.endsWith("\n\n") ? "" : before.endsWith("\n") ? "\n" : "\n\n";
    const tail = after === "" || after.startsWith("\n\n") ? "\n" : after.startsWith("\n") ? "\n" : "\n\n";
    const added = lead + markdown + tail;
    body.setRangeText(added, start, end, "end");
    caret = { start: start + added.length, end: start + added.length };
    body.dispatchEvent(new Event("input", { bubbles: true }));
    body.focus();
    body.setSelectionRange(caret.start, caret.end);
  }

  async function upload() {
    const chosen = file.files && file.files[0];
    if (!newsletter || !newsletter.value) return say("Choose the issue's newsletter first: images belong to its library.", true);
    if (!chosen) { file.focus(); return say("Choose an image file first, or drop one on the text.", true); }
    if (!alt.value.trim()) { alt.focus(); return say("Describe the image (alt text): readers who cannot see it get those words.", true); }
    const data = new FormData();
    data.append("newsletter", newsletter.value);
    data.append("alt", alt.value);
    data.append("file", chosen);
    say("Uploading " + chosen.name + "…");
    let response, payload;
    try {
      response = await fetch(tools.dataset.uploadUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": form.querySelector('[name="csrfmiddlewaretoken"]').value },
      });
      payload = await response.json();
    } catch (error) {
      return say("The image was not uploaded: " + error, true);
    }
    if (!response.ok) return say(payload.error || "The image was not uploaded (" + response.status + ").", true);
    insert(payload.markdown);
    file.value = "";
    alt.value = "";
    say("Inserted " + chosen.name + " (" + payload.width + " × " + payload.height + " px, " + Math.round(payload.size / 1024) + " KB).");
    loadLibrary();
  }

  async function loadLibrary() {
    if (!newsletter || !newsletter.value) return;
    let payload;
    try {
      const url = tools.dataset.libraryUrl + "?newsletter=" + encodeURIComponent(newsletter.value);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      payload = await response.json();
    } catch (error) {
      return;
    }
    library = payload.images;
    const first = document.createElement("option");
    first.value = "";
    first.textContent = library.length ? "(choose an image)" : "(no images yet)";
    choice.replaceChildren(first, ...library.map(function (image, index) {
      const option = document.createElement("option");
      option.value = String(index);
      option.textContent = image.alt + " (" + image.width + " × " + image.height + ")";
      return option;
    }));
  }

  tools.querySelector(".image-insert").addEventListener("click", upload);
  tools.querySelector(".image-library-insert").addEventListener("click", function () {
    const image = library[Number(choice.value)];
    if (choice.value === "" || !image) return say("Choose an image from the library first.", true);
    insert(image.markdown);
    say("Inserted " + image.alt + ".");
  });
  // Enter in the alt text uploads, instead of submitting the whole issue form.
  alt.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      upload();
    }
  });
  if (newsletter) newsletter.addEventListener("change", loadLibrary);

  // Dropping a file on the Body: it is the file to upload; with alt text written, it goes at once.
  if (body && write) {
    body.addEventListener("dragover", function (event) {
      if (!Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      write.classList.add("drop-target");
    });
    body.addEventListener("dragleave", function () { write.classList.remove("drop-target"); });
    body.addEventListener("drop", function (event) {
      if (!event.dataTransfer.files.length) return;
      event.preventDefault();
      write.classList.remove("drop-target");
      const position = document.caretPositionFromPoint && document.caretPositionFromPoint(event.clientX, event.clientY);
      if (position && position.offsetNode === body) caret = { start: position.offset, end: position.offset };
      else remember();
      const files = new DataTransfer();
      files.items.add(event.dataTransfer.files[0]);
      file.files = files.files;
      if (alt.value.trim()) return upload();
      alt.focus();
      say("Describe " + event.dataTransfer.files[0].name + " (alt text), then press Enter or “Upload and insert”.");
    });
  }
  loadLibrary();
})();
