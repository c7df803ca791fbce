// Tells the site the browser's time zone (a cookie read by playground/classroom/zones.py), so
// that a course's dates can be shown in the student's own time beside the course's. Only a
// zone name is sent; the server ignores anything that is not one.
(function () {
  "use strict";
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
      document.cookie = "pg_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* no Intl: the course's zone alone */ }
})();
