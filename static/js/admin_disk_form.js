// The admin's disk form: the S3 fields show only for an S3 disk, the folder only for a local one.
(function () {
  function update() {
    var backend = document.getElementById("id_backend");
    if (!backend) return;
    var s3 = backend.value === "s3";
    document.querySelectorAll("[class*='field-s3_']").forEach(function (row) { row.hidden = !s3; });
    document.querySelectorAll(".field-path").forEach(function (row) { row.hidden = s3; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    update();
    var backend = document.getElementById("id_backend");
    if (backend) backend.addEventListener("change", update);
  });
})();
