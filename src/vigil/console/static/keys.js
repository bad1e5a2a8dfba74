// Single-key shortcuts: pressing K presses the element marked data-key="K" (a select is focused
// instead). Never while typing in a text field, and never with Ctrl, Alt or Meta held.
"use strict";
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const focused = event.target;
  if (focused instanceof HTMLElement && (focused.isContentEditable || ["INPUT", "TEXTAREA"].includes(focused.tagName))) {
    if (!(focused instanceof HTMLInputElement && ["checkbox", "radio", "submit"].includes(focused.type))) return;
  }
  const target = document.querySelector(`[data-key="${CSS.escape(event.key)}"]`);
  if (!(target instanceof HTMLElement)) return;
  event.preventDefault();
  if (target instanceof HTMLSelectElement) target.focus();
  else target.click();
});
