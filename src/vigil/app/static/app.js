// Vigil app: live refresh over server-sent events, and Enter to send. No keys ever reach this page.
"use strict";

async function refresh(id) {
  const element = document.getElementById(id);
  if (!element || !element.dataset.src) return;
  const response = await fetch(element.dataset.src, { credentials: "same-origin" });
  if (!response.ok) return;
  const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
  element.innerHTML = await response.text();
  if (id === "timeline" && atBottom) element.scrollTop = element.scrollHeight;
}

// A page whose state a live event may change (emoji verification) reloads only when it did change, so a
// reload never races a click on a page that is still current.
async function reloadIfChanged(id) {
  const element = document.getElementById(id);
  if (!element || !element.dataset.stateSrc) return;
  const response = await fetch(element.dataset.stateSrc, { credentials: "same-origin" });
  if (response.ok && (await response.text()) !== element.dataset.state) window.location.reload();
}

function scrollDown() {
  const timeline = document.getElementById("timeline");
  if (timeline) timeline.scrollTop = timeline.scrollHeight;
}

document.addEventListener("DOMContentLoaded", () => {
  scrollDown();
  const composer = document.getElementById("composer");
  if (composer) {
    const text = composer.querySelector("textarea");
    text.focus();
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
  }
  if (document.getElementById("sidebar")) {
    const update = () => {
      refresh("timeline");
      refresh("sidebar");
      refresh("account");
      reloadIfChanged("sas");
    };
    const events = new EventSource("/events");
    events.onmessage = update;
    // A missed event (a dropped stream, a round that failed half-way) is caught up within seconds.
    window.setInterval(update, 5000);
  }
});
