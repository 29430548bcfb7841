// The signup forms' helper (newsletters.firewall): solves the proof-of-work challenge (ALTCHA's
// format: find n with SHA-256(salt + n) = challenge) once the reader starts filling the form,
// fills in the browser's time zone, and on forms marked data-inline posts with fetch and shows
// the answer in place. Without it the forms still post; under a burst the server then asks
// for the challenge on a page of its own, where this script runs.
(function () {
  "use strict";

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  async function solve(url) {
    var answer = await fetch(url, { credentials: "omit", cache: "no-store" });
    var c = await answer.json();
    var encoder = new TextEncoder();
    for (var n = 0; n <= c.maxnumber; n++) {
      var digest = await crypto.subtle.digest(c.algorithm, encoder.encode(c.salt + n));
      if (hex(digest) === c.challenge) {
        return btoa(JSON.stringify({
          algorithm: c.algorithm, challenge: c.challenge, number: n, salt: c.salt, signature: c.signature
        }));
      }
    }
    throw new Error("challenge not solved");
  }

  function setUp(form) {
    var field = form.querySelector('input[name="altcha"]');
    var status = form.querySelector("[data-signup-status]");
    var zone = form.querySelector('input[name="timezone"][type="hidden"]');
    var pending = null;
    if (zone && !zone.value) {
      try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
    }
    function say(text) { if (status) status.textContent = text; }
    function solution() {
      if (!field || !form.dataset.challenge || !window.crypto || !crypto.subtle) return Promise.resolve();
      if (!pending) {
        pending = solve(form.dataset.challenge).then(function (value) { field.value = value; });
      }
      return pending;
    }
    form.addEventListener("focusin", function () { solution().catch(function () {}); }, { once: true });
    if (form.dataset.solveNow !== undefined) solution().catch(function () {});
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say("Checking that you are not a robot…");
      solution().catch(function () {}).then(function () {
        if (form.dataset.inline === undefined) {
          form.submit();
          return;
        }
        return fetch(form.action, {
          method: "POST", body: new FormData(form), headers: { Accept: "application/json" }, credentials: "omit"
        }).then(function (response) { return response.json(); }).then(function (json) {
          say(json.message);
          if (json.ok) form.reset();
          pending = null;
          if (field) field.value = "";
        });
      }).catch(function () { say("Something went wrong; please try again."); });
    });
  }

  document.querySelectorAll("form[data-signup]").forEach(setUp);
})();
