// Live progress for a running import.  Without JavaScript the page refreshes itself every few
// seconds (<meta http-equiv="refresh">); with it, this polls the JSON and stops the refresh.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("import-progress");
  if (!box) return;
  const refresh = document.querySelector('meta[http-equiv="refresh"]');
  if (refresh) refresh.remove();
  const bar = box.querySelector("progress");
  const tick = async () => {
    const response = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    bar.value = data.percent;
    for (const el of box.querySelectorAll("[data-field]")) {
      if (el.dataset.field in data) el.textContent = data[el.dataset.field];
    }
    if (data.done) window.location.reload();
    else setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
});
