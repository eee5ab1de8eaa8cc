// A form marked data-unsaved-warning asks before the page is left with changes not saved (the
// browser's own "Leave site?" question): a template or campaign built for twenty minutes is not
// lost to a click on the menu, the back button or a closed tab.  The form counts as changed from
// the first edit (typing, a choice, or the block editor's "tidings:edited" event for a block
// moved, added or removed), or from the start when the server showed it again unsaved
// (data-unsaved: a refused save, or a button that redraws it without JavaScript).  Submitting
// the form leaves without asking.
(() => {
  const forms = document.querySelectorAll("form[data-unsaved-warning]");
  if (!forms.length) return;
  let changed = Array.from(forms).some((form) => form.hasAttribute("data-unsaved"));
  let leaving = false;
  const mark = () => {
    changed = true;
  };
  forms.forEach((form) => {
    form.addEventListener("input", mark);
    form.addEventListener("change", mark);
    form.addEventListener("tidings:edited", mark);
    form.addEventListener("submit", () => {
      leaving = true;
    });
  });
  window.addEventListener("beforeunload", (event) => {
    if (!changed || leaving) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers ask only when this is set
  });
  // Back from the browser's cache (the back button after leaving): a submit that left no longer
  // counts, the form may be changed again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) leaving = false;
  });
})();
