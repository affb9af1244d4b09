// What every page of the test site shares, as iHome's pages do it: the csrf_token cookie sent
// back as X-CSRFToken, jQuery $.ajax with a success callback only, errno "4101" sending to the
// login page.
function getCookie(name) {
  var r = document.cookie.match("\\b" + name + "=([^;]*)\\b");
  return r ? r[1] : undefined;
}

function api(method, url, data, success) {
  $.ajax({
    url: url,
    type: method,
    data: data === null ? undefined : JSON.stringify(data),
    contentType: "application/json",
    dataType: "json",
    headers: {"X-CSRFToken": getCookie("csrf_token")},
    success: function (resp) {
      if (resp.errno == "4101") {
        location.href = "/login.html";
      } else if (resp.errno == "0") {
        success(resp.data);
      } else {
        $("#errmsg").text(resp.errmsg).show();
      }
    }
  });
}

function formData(form) {
  var data = {};
  $(form).find("input, select").each(function () {
    if (this.name) data[this.name] = $(this).val();
  });
  return data;
}
