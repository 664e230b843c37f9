// The plan page: the price follows the size slider as it moves.
(function () {
  var slider = document.getElementById("gb");
  if (!slider) return;
  function update() {
    var gb = parseInt(slider.value, 10);
    var cents = gb * parseInt(slider.dataset.pricePerGb, 10);
    document.getElementById("gb-out").textContent = gb;
    document.getElementById("price-out").textContent =
      Math.floor(cents / 100) + "." + String(cents % 100).padStart(2, "0") + " " + slider.dataset.currency.toUpperCase();
  }
  slider.addEventListener("input", update);
  // The field may have changed before this deferred script ran (a fast click, or the browser restoring
  // the value on Back): show the price of what the field holds now.
  update();
})();
