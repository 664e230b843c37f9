// The plan page: the price and disk category follow the size slider as it moves.
(function () {
  var slider = document.getElementById("gb");
  if (!slider) return;
  var cats = [[75, "E"], [50, "D"], [25, "C"], [10, "B"]];
  function update() {
    var gb = parseInt(slider.value, 10);
    var cents = gb * parseInt(slider.dataset.pricePerGb, 10);
    document.getElementById("gb-out").textContent = gb;
    document.getElementById("price-out").textContent =
      Math.floor(cents / 100) + "." + String(cents % 100).padStart(2, "0") + " " + slider.dataset.currency.toUpperCase();
    var cat = "A";
    for (var i = 0; i < cats.length; i++) { if (gb >= cats[i][0]) { cat = cats[i][1]; break; } }
    document.getElementById("category-out").textContent = cat;
  }
  slider.addEventListener("input", update);
})();
