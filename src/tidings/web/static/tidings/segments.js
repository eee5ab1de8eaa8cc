// Live count under a segment's query box.  Progressive enhancement: without JavaScript the
// "Check and count" button does the same with a full page load.  Our own dozen lines rather than
// htmx, which would have to be vendored into the repository.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-count-url]");
  const box = form && form.querySelector("[data-segment-count]");
  const out = document.getElementById("segment-check");
  if (!box || !out) return;
  let timer = null;
  box.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const url = form.dataset.countUrl + "?q=" + encodeURIComponent(box.value);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      out.replaceChildren();
      for (const e of data.errors) {
        const pre = document.createElement("pre");
        pre.className = "segment-error";
        pre.textContent = `${e.message}\n${e.line}\n${e.caret}`;
        out.append(pre);
      }
      if (!data.errors.length && data.count !== null) {
        const p = document.createElement("p");
        p.textContent = `${data.count} contact${data.count === 1 ? "" : "s"} match now.`;
        out.append(p);
      }
    }, 400);
  });
});
