// The operator menus are <details> elements and work without this file.  With it they also
// behave as people expect of a menu: Escape closes the open one (and puts the focus back on its
// button), and a click or a focus anywhere outside it closes it.
(() => {
  const openMenu = () => document.querySelector('details[name="nav-menu"][open]');
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const menu = openMenu();
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });
  const closeUnlessInside = (event) => {
    const menu = openMenu();
    if (menu && !menu.contains(event.target)) menu.open = false;
  };
  document.addEventListener("click", closeUnlessInside);
  document.addEventListener("focusin", closeUnlessInside);
})();
