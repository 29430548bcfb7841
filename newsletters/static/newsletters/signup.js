// The signup forms' helper (newsletters.firewall, docs/operating/signup-protection.md): solves
// the proof-of-work challenge (ALTCHA's format: find n with SHA-256(salt + n) = challenge) when
// the server asks for one, fills in the browser's time zone, and on forms marked data-inline
// posts with fetch and shows the answer in place. Without it the forms still post; while the
// challenge is on, the server then asks for it on a page of its own, where this script runs.
(function () {
  "use strict";
  var BATCH = 500;  // digests computed at once: one await per batch, not per number

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  async function solve(c) {
    var encoder = new TextEncoder();
    for (var start = 0; start <= c.maxnumber; start += BATCH) {
      var batch = [];
      for (var n = start; n < start + BATCH && n <= c.maxnumber; n++) {
        batch.push(crypto.subtle.digest(c.algorithm, encoder.encode(c.salt + n)));
      }
      var digests = await Promise.all(batch);
      for (var i = 0; i < digests.length; i++) {
        if (hex(digests[i]) === c.challenge) {
          return btoa(JSON.stringify({
            algorithm: c.algorithm, challenge: c.challenge, number: start + i, salt: c.salt, signature: c.signature
          }));
        }
      }
    }
    throw new Error("challenge not solved");
  }

  async function answer(url, always) {
    var response = await fetch(url, { credentials: "omit", cache: "no-store" });
    var c = await response.json();
    return c.required || always ? solve(c) : "";
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
    function solution(always) {
      if (!field || !form.dataset.challenge || !window.crypto || !crypto.subtle) return Promise.resolve();
      if (!pending || always) {
        pending = answer(form.dataset.challenge, always).then(function (value) { field.value = value; });
      }
      return pending;
    }
    function post() {
      return fetch(form.action, {
        method: "POST", body: new FormData(form), headers: { Accept: "application/json" }, credentials: "omit"
      }).then(function (response) { return response.json(); });
    }
    form.addEventListener("focusin", function () { solution(false).catch(function () {}); }, { once: true });
    if (form.dataset.solveNow !== undefined) solution(true).catch(function () {});
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say("Sending…");
      solution(form.dataset.solveNow !== undefined && !field.value).catch(function () {}).then(function () {
        if (form.dataset.inline === undefined) {
          form.submit();
          return;
        }
        return post().then(function (json) {
          if (!json.challenge) return json;
          // A burst began after the page asked: show it is a person, then send again.
          say("Checking that you are not a robot…");
          return solution(true).then(post);
        }).then(function (json) {
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
