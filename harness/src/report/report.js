// Detail view of the report: draws every op of a chosen time window.
// Plain JS, no dependencies; any error is written into the page
// (#script-error) so that a headless browser test can see it.
(function () {
  'use strict';
  function showError(msg) {
    var d = document.getElementById('script-error');
    if (!d) {
      d = document.createElement('div');
      d.id = 'script-error';
      d.className = 'notes';
      document.body.insertBefore(d, document.body.firstChild);
    }
    d.textContent = 'Script error in the report: ' + msg;
  }
  window.addEventListener('error', function (e) {
    showError(e.message + ' (line ' + e.lineno + ')');
  });
  try {
    init();
    document.body.setAttribute('data-js', 'ok');
  } catch (e) {
    showError(String(e && e.stack || e));
  }

  function init() {
    var D = JSON.parse(document.getElementById('report-data').textContent);
    var OUT = ['ok', 'fail', 'info', 'pending'];
    var LIMIT = 4000;     // ops drawn one by one at most
    var MAX_FILES = 8;    // op files one window may load
    var KEEP_FILES = 48;  // op files kept in memory
    var W = 1200, LEFT = 74, RIGHT = 16;
    var zoom = document.getElementById('zoom');
    var info = document.getElementById('zoom-info');
    var cex = {};
    D.cex.forEach(function (i) { cex[i] = true; });
    var procLane = {};
    if (D.laneMap.procs) D.laneMap.procs.forEach(function (p, i) { procLane[p] = i; });
    var cur = null;
    var wanted = 0;       // the latest window asked for; older loads just store
    var files = {};       // op file number -> its ops, once loaded
    var loading = {};     // op file number -> callbacks waiting for it
    var kept = [];        // loaded file numbers, oldest first

    var filesLoaded = 0;  // op files loaded since the page opened
    window.__reportOps = function (n, ops) {
      files[n] = ops;
      kept.push(n);
      document.body.setAttribute('data-files-loaded', ++filesLoaded);
    };

    function esc(s) {
      return String(s).replace(/[&<>"']/g, function (c) {
        return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
      });
    }
    function dur(us) {
      var a = Math.abs(us);
      if (a < 1000) return Math.round(us) + ' µs';
      if (a < 1e6) return (us / 1000).toFixed(a < 1e4 ? 2 : 1) + ' ms';
      return (us / 1e6).toFixed(3) + ' s';
    }
    // Tick label at `t` µs for ticks `step` µs apart, with enough decimals
    // that neighbours differ (as the server-side axes do).
    function tick(t, step) {
      function dec(x) { return x >= 1 ? 0 : Math.min(9, Math.ceil(-Math.log10(x))); }
      if (t < 1e6 && step < 1e6) return (t / 1000).toFixed(dec(step / 1000)) + 'ms';
      return (t / 1e6).toFixed(dec(step / 1e6)) + 's';
    }
    function nice(raw) {
      if (!(raw > 0)) return 1;
      var b = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / b;
      return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * b;
    }
    function procLabel(p) { return typeof p === 'number' ? 'p' + p : p; }
    function laneOf(o) {
      var n = D.laneMap.fold;
      if (n) return typeof o[1] === 'number' ? o[1] % n : n;
      return procLane[procLabel(o[1])];
    }
    // Drawn until the client saw the outcome; open ops get a dashed tail.
    function endOf(o) {
      return o[5] < 0 ? o[4] : o[5];
    }
    function fileName(n) {
      var s = String(n);
      while (s.length < 4) s = '0' + s;
      return D.dir + '/ops-' + s + '.js';
    }
    // Op files that may hold an op overlapping [a, b]: an op ends after
    // `a` and starts before `b`.
    function filesFor(a, b) {
      var out = [];
      D.chunks.forEach(function (c, i) { if (c[1] >= a && c[2] <= b) out.push(i); });
      return out;
    }
    // The counterexample's window is in the page itself.
    function embedded(a, b) {
      return D.cexw && D.cexComplete && D.cexw[0] <= a && b <= D.cexw[1];
    }
    function load(need, done) {
      var left = need.length;
      need.forEach(function (n) {
        if (files[n]) { if (--left === 0) done(null); return; }
        var first = !loading[n];
        loading[n] = loading[n] || [];
        loading[n].push(function (err) { if (err) done(err); else if (--left === 0) done(null); });
        if (!first) return;
        var s = document.createElement('script');
        s.src = fileName(n);
        s.onload = function () {
          s.parentNode.removeChild(s);
          var cbs = loading[n]; delete loading[n];
          cbs.forEach(function (cb) { cb(files[n] ? null : fileName(n) + ' holds no ops'); });
        };
        s.onerror = function () {
          s.parentNode.removeChild(s);
          var cbs = loading[n]; delete loading[n];
          cbs.forEach(function (cb) { cb('could not load ' + fileName(n)); });
        };
        document.head.appendChild(s);
      });
    }
    // Forgets the oldest files beyond KEEP_FILES, except those in use.
    function trim(inUse) {
      var use = {};
      inUse.forEach(function (n) { use[n] = true; });
      while (kept.length > KEEP_FILES) {
        var i = 0;
        while (i < kept.length && use[kept[i]]) i++;
        if (i === kept.length) break;
        delete files[kept[i]];
        kept.splice(i, 1);
      }
    }

    function render(a, b) {
      a = Math.max(0, Math.floor(a));
      b = Math.min(D.t1, Math.ceil(b));
      if (b <= a) b = a + 1;
      cur = [a, b];
      var token = ++wanted;
      var need = embedded(a, b) ? null : filesFor(a, b);
      var cut = false;
      if (need && need.length > MAX_FILES) {
        // Too much for one view: end the window where the files allowed run out.
        b = Math.max(a + 1, D.chunks[need[MAX_FILES]][0]);
        need = filesFor(a, b).slice(0, MAX_FILES);
        cut = true;
        cur = [a, b];
      }
      var missing = need ? need.filter(function (n) { return !files[n]; }) : [];
      if (!missing.length) return draw(a, b, need, cut);
      document.body.setAttribute('data-detail', 'loading');
      info.textContent = dur(a) + ' – ' + dur(b) + ': loading ' + missing.length + ' op file(s)…';
      load(missing, function (err) {
        if (token !== wanted) return;
        if (err) {
          document.body.setAttribute('data-detail', 'error');
          zoom.innerHTML = '<p class="notes">The detail view ' + esc(err) + ': it reads the ops from the ' +
            esc(D.dir) + '/ folder next to report.html, which must stay beside the page.</p>';
          info.textContent = '';
          return;
        }
        draw(a, b, need, cut);
      });
    }

    function draw(a, b, need, cut) {
      var pool = need ? [] : D.ops;
      if (need) {
        need.forEach(function (n) { pool = pool.concat(files[n]); });
        trim(need);
      }
      var sel = pool.filter(function (o) { return o[4] <= b && endOf(o) >= a; });
      var total = sel.length;
      if (total > LIMIT) {
        // Too many to draw one by one: narrow to the first LIMIT ops.
        sel.sort(function (x, y) { return x[4] - y[4]; });
        b = sel[LIMIT - 1][4];
        sel = sel.slice(0, LIMIT);
        cur = [a, b];
      }
      var lanes = [], seen = {};
      sel.forEach(function (o) { var l = laneOf(o); if (!seen[l]) { seen[l] = true; lanes.push(l); } });
      lanes.sort(function (x, y) { return x - y; });
      var row = {};
      lanes.forEach(function (l, i) { row[l] = i; });
      var lh = lanes.length > 40 ? 10 : 18, top = 6;
      var H = top + lanes.length * lh + 26;
      var sx = function (t) { return LEFT + (t - a) / (b - a) * (W - LEFT - RIGHT); };
      var cx = function (t) { return Math.max(LEFT, Math.min(W - RIGHT, sx(t))); };
      var h = [];
      h.push('<svg class="chart" id="zoom-svg" viewBox="0 0 ' + W + ' ' + H + '" width="' + W + '" height="' + H +
        '" data-a="' + a + '" data-b="' + b + '" data-ops="' + sel.length + '" data-files="' + (need ? need.length : 0) + '">');
      var step = nice((b - a) / 10), y0 = top + lanes.length * lh;
      var grid = '';
      for (var t = Math.ceil(a / step) * step; t <= b; t += step) {
        var x = sx(t).toFixed(1);
        grid += 'M' + x + ',' + top + 'V' + y0;
        h.push('<text class="axis" x="' + x + '" y="' + (y0 + 14) + '" text-anchor="middle">' + esc(tick(t, step)) + '</text>');
      }
      h.push('<path class="grid" d="' + grid + '"/><path class="baseline" d="M' + LEFT + ',' + y0 + 'H' + (W - RIGHT) + '"/>');
      D.bands.forEach(function (bd) {
        if (bd[1] < a || bd[0] > b) return;
        var x0 = cx(bd[0]), x1 = Math.max(cx(bd[1]), x0 + 1);
        h.push('<rect class="band b-' + bd[2] + '" x="' + x0.toFixed(1) + '" y="' + top + '" width="' + (x1 - x0).toFixed(1) +
          '" height="' + (lanes.length * lh) + '"><title>' + esc(bd[3]) + '</title></rect>');
      });
      lanes.forEach(function (l, i) {
        h.push('<text class="lane" x="' + (LEFT - 6) + '" y="' + (top + i * lh + lh - 5) + '">' + esc(D.lanes[l]) + '</text>');
      });
      sel.forEach(function (o) {
        var y = top + row[laneOf(o)] * lh + 2, bh = lh - 4;
        var x0 = cx(o[4]);
        var x1 = Math.max(cx(endOf(o)), x0 + 1.5);
        var cls = 'op o-' + OUT[o[6]] + (cex[o[0]] ? ' cex' : '') + (o[0] === D.cexop ? ' cex-op' : '');
        var key = o[3] !== null ? ' ' + o[3] : '';
        var lat = o[5] < 0 ? 'open' : dur(o[5] - o[4]);
        var title = '#' + o[0] + ' ' + procLabel(o[1]) + ' ' + D.fs[o[2]] + key + ' ' + o[7] + ' → ' + OUT[o[6]] +
          ' · ' + lat + ' · at ' + dur(o[4]);
        h.push('<g class="' + cls + '"><title>' + esc(title) + '</title><rect x="' + x0.toFixed(1) + '" y="' + y +
          '" width="' + (x1 - x0).toFixed(1) + '" height="' + bh + '"/>');
        if (o[6] >= 2) {
          h.push('<path class="tail" d="M' + x1.toFixed(1) + ',' + (y + bh / 2) + 'H' + (W - RIGHT) + '"/>');
        }
        if (x1 - x0 > 70 && lh >= 18) {
          h.push('<text x="' + (x0 + 3).toFixed(1) + '" y="' + (y + bh - 4) + '">' + esc(D.fs[o[2]] + key + ' ' + o[7]) + '</text>');
        }
        h.push('</g>');
      });
      h.push('</svg>');
      if (!sel.length) h = ['<p class="muted">No ops in this window.</p>'];
      zoom.innerHTML = h.join('');
      info.textContent = dur(a) + ' – ' + dur(b) + ': ' + sel.length + ' ops' +
        (total > LIMIT ? ' (window cut to the first ' + LIMIT + ' of ' + total + ')' : '') +
        (cut ? ' (window cut where ' + MAX_FILES + ' op files end)' : '') + '.';
      document.body.setAttribute('data-detail', 'ready');
    }

    // A window holding a few hundred ops around time `t` (µs).
    function around(t) {
      var rate = D.total / Math.max(1, D.t1);
      var w = Math.min(D.t1, Math.max(2000, 600 / Math.max(rate, 1e-12)));
      return [t - w * 0.25, t + w * 0.75];
    }

    var ov = document.getElementById('overview');
    var brush = document.getElementById('brush');
    var x0 = +ov.getAttribute('data-x0'), x1 = +ov.getAttribute('data-x1'), vw = +ov.getAttribute('data-w');
    function tOf(ev) {
      var r = ov.getBoundingClientRect();
      var vx = (ev.clientX - r.left) * vw / r.width;
      return Math.max(0, Math.min(D.t1, (vx - x0) / (x1 - x0) * D.t1));
    }
    function vxOf(t) { return x0 + t / Math.max(1, D.t1) * (x1 - x0); }
    var drag = null;
    ov.addEventListener('mousedown', function (ev) {
      if (ev.target.closest && ev.target.closest('.band-label')) return;
      drag = tOf(ev);
      ev.preventDefault();
    });
    window.addEventListener('mousemove', function (ev) {
      if (drag === null) return;
      var t = tOf(ev), a = Math.min(drag, t), b = Math.max(drag, t);
      brush.setAttribute('x', vxOf(a));
      brush.setAttribute('width', Math.max(1, vxOf(b) - vxOf(a)));
      brush.setAttribute('y', 0);
      brush.setAttribute('height', ov.viewBox.baseVal.height);
    });
    window.addEventListener('mouseup', function (ev) {
      if (drag === null) return;
      var t = tOf(ev), a = Math.min(drag, t), b = Math.max(drag, t);
      drag = null;
      if (vxOf(b) - vxOf(a) < 3) {
        var w = around(a);
        a = w[0]; b = w[1];
      }
      brush.setAttribute('width', 0);
      render(a, b);
    });
    Array.prototype.forEach.call(document.querySelectorAll('.band-label'), function (g) {
      g.addEventListener('click', function () {
        var a = +g.getAttribute('data-a'), b = +g.getAttribute('data-b');
        var w = around(a);
        render(w[0], Math.max(w[1], Math.min(b, w[0] + (w[1] - w[0]) * 3)));
        zoom.scrollIntoView({ block: 'nearest' });
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll('.zoom-cex'), function (btn) {
      if (!D.cexw) { btn.disabled = true; return; }
      btn.addEventListener('click', function () {
        render(D.cexw[0], D.cexw[1]);
        document.getElementById('timeline').scrollIntoView();
      });
    });
    document.getElementById('zoom-prev').addEventListener('click', function () {
      if (!cur) return;
      var w = cur[1] - cur[0];
      render(cur[0] - w, cur[0]);
    });
    document.getElementById('zoom-next').addEventListener('click', function () {
      if (!cur) return;
      var w = cur[1] - cur[0];
      render(cur[1], cur[1] + w);
    });

    if (D.cexw) {
      render(D.cexw[0], D.cexw[1]);
    } else if (D.bands.length) {
      var w = around(D.bands[0][0]);
      render(w[0], w[1]);
    } else {
      var w0 = around(0);
      render(w0[0], w0[1]);
    }
  }
})();
