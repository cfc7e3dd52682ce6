// shopbridge console: the copy buttons. Everything else works without this script; without
// it the values can still be selected and copied by hand.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  const status = button.nextElementSibling;
  const done = () => {
    const label = button.textContent;
    button.textContent = button.dataset.copied;
    if (status) status.textContent = button.dataset.copied; // announced by screen readers
    setTimeout(() => {
      button.textContent = label;
      if (status) status.textContent = "";
    }, 2000);
  };
  field.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});
