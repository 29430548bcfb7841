// The publish-time picker in the editor's own time zone: post the browser's IANA zone with the
// value, show a stored time in that zone, and say what UTC time the chosen one is.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const pad = (n) => String(n).padStart(2, "0");
  const local = (d) =>
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  for (const box of document.querySelectorAll("[data-local-datetime]")) {
    const input = box.querySelector('input[type="datetime-local"]');
    const hidden = box.querySelector('input[type="hidden"]');
    const output = box.querySelector("output");
    if (!zone || !input) continue;
    // A stored time arrives in UTC; an unsaved one the editor typed stays as typed, in the zone posted.
    if (box.dataset.utc) input.value = local(new Date(box.dataset.utc));
    if (box.dataset.utc || !input.value) {
      hidden.value = zone;
      box.querySelector("[data-zone]").textContent = zone;
    }
    const show = () => {
      const when = input.value && hidden.value === zone ? new Date(input.value) : null;
      output.textContent =
        when && !Number.isNaN(when.getTime())
          ? `= ${when.toISOString().slice(0, 16).replace("T", " ")} UTC`
          : "";
    };
    input.addEventListener("input", show);
    show();
  }
});
