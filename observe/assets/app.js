// Herald dashboard: polls the admin API and draws sparklines by hand, so
// the page needs nothing beyond what Herald serves (it works offline).
(function () {
  'use strict';

  var POINTS = 120;          // two minutes of one-second samples
  var TOPICS_EVERY = 5;      // poll /api/topics every 5 ticks: it walks every subscription
  var TOKEN_KEY = 'herald.adminToken';

  var token = sessionStorage.getItem(TOKEN_KEY) || '';
  var prev = null;
  var tick = 0;
  var timer = null;
  var series = { connected: [], msgIn: [], msgOut: [], drops: [] };

  function $(id) { return document.getElementById(id); }

  function fmt(n) {
    if (n === null || n === undefined || isNaN(n)) return '–';
    var a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(2) + 'G';
    if (a >= 1e6) return (n / 1e6).toFixed(2) + 'M';
    if (a >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    if (a >= 100 || Number.isInteger(n)) return String(Math.round(n));
    return n.toFixed(1);
  }

  function fmtBytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + units[i];
  }

  function fmtDuration(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    return m + 'm ' + (s % 60) + 's';
  }

  function push(arr, v) {
    arr.push(v);
    if (arr.length > POINTS) arr.shift();
  }

  // spark draws data into an SVG with a viewBox of POINTS × 32: a line and
  // the area under it, scaled to the largest value shown.
  function spark(svg, data) {
    var H = 32;
    var max = 0;
    for (var i = 0; i < data.length; i++) if (data[i] > max) max = data[i];
    if (max === 0) max = 1;
    var off = POINTS - data.length;
    var pts = [];
    for (var j = 0; j < data.length; j++) {
      var x = off + j;
      var y = H - 1 - (data[j] / max) * (H - 2);
      pts.push(x.toFixed(1) + ',' + y.toFixed(1));
    }
    var line = svg.querySelector('polyline');
    var area = svg.querySelector('polygon');
    if (!line) {
      // The <svg> in the page already carries the SVG namespace.
      area = document.createElementNS(svg.namespaceURI, 'polygon');
      line = document.createElementNS(svg.namespaceURI, 'polyline');
      svg.appendChild(area);
      svg.appendChild(line);
    }
    line.setAttribute('points', pts.join(' '));
    if (pts.length > 0) {
      area.setAttribute('points', off + ',' + H + ' ' + pts.join(' ') + ' ' + (POINTS - 1) + ',' + H);
    }
  }

  function setStatus(text, cls) {
    var el = $('status');
    el.textContent = text;
    el.className = 'status ' + (cls || '');
  }

  function Unauthorized() { this.message = 'unauthorized'; }

  function api(path) {
    var headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(path, { headers: headers, cache: 'no-store' }).then(function (r) {
      if (r.status === 401) throw new Unauthorized();
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }

  // rows replaces a table body with one row per item; cells are text, never
  // HTML, because topic names and listener names come from outside.
  function rows(tbody, items, cells) {
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    items.forEach(function (it) {
      var tr = document.createElement('tr');
      cells(it).forEach(function (c) {
        var td = document.createElement('td');
        td.textContent = c.text;
        if (c.num) td.className = 'num';
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  function sumDrops(d) {
    var t = 0;
    for (var k in d) t += d[k];
    return t;
  }

  function render(s) {
    $('version').textContent = 'v' + s.version;
    $('uptime').textContent = 'up ' + fmtDuration(s.uptime_seconds);
    $('connected').textContent = fmt(s.connections.connected);
    $('sessions').textContent = fmt(s.sessions.online) + ' online · ' + fmt(s.sessions.offline) + ' offline sessions';
    $('subscriptions').textContent = fmt(s.subscriptions);
    $('retained').textContent = fmt(s.retained);
    $('queued').textContent = fmt(s.queues.queued_messages);
    $('queued-max').textContent = fmtBytes(s.queues.queued_bytes) + ' · longest ' + fmt(s.queues.max_queued);
    $('inflight').textContent = fmt(s.queues.inflight);
    $('drops-total').textContent = fmt(sumDrops(s.dropped)) + ' since start';

    push(series.connected, s.connections.connected);
    var dropRates = {};
    if (prev) {
      var dt = (s.now_ms - prev.now_ms) / 1000;
      if (dt > 0) {
        var rate = function (a, b) { return Math.max(0, (a - b) / dt); };
        var inR = rate(s.messages.received, prev.messages.received);
        var outR = rate(s.messages.sent, prev.messages.sent);
        var dropR = rate(sumDrops(s.dropped), sumDrops(prev.dropped));
        for (var k in s.dropped) dropRates[k] = rate(s.dropped[k], prev.dropped[k] || 0);
        push(series.msgIn, inR);
        push(series.msgOut, outR);
        push(series.drops, dropR);
        $('msg-in').textContent = fmt(inR);
        $('msg-out').textContent = fmt(outR);
        $('drops').textContent = fmt(dropR);
        $('bytes-in').textContent = fmtBytes(rate(s.bytes.received, prev.bytes.received)) + '/s';
        $('bytes-out').textContent = fmtBytes(rate(s.bytes.sent, prev.bytes.sent)) + '/s';
      }
    }
    prev = s;

    spark($('spark-connected'), series.connected);
    spark($('spark-msg-in'), series.msgIn);
    spark($('spark-msg-out'), series.msgOut);
    spark($('spark-drops'), series.drops);

    rows($('drop-causes'), Object.keys(s.dropped).sort(), function (k) {
      return [{ text: k }, { text: fmt(s.dropped[k]), num: true }, { text: fmt(dropRates[k] || 0), num: true }];
    });
    var limits = s.limit_refusals || {};
    rows($('limits'), Object.keys(limits).sort(), function (k) {
      return [{ text: k }, { text: fmt(limits[k]), num: true }];
    });
    var b = s.memory_budget;
    $('budget').textContent = b.budget_bytes > 0
      ? 'Memory budget: ' + fmtBytes(b.used_bytes) + ' of ' + fmtBytes(b.budget_bytes) + ' · publishers paused ' + fmt(b.paused_publishers_total) + '×'
      : 'Memory budget: none (' + fmtBytes(b.used_bytes) + ' queued)';
    var listeners = s.connections.by_listener || {};
    rows($('listeners'), Object.keys(listeners).sort(), function (k) {
      return [{ text: k }, { text: fmt(listeners[k]), num: true }];
    });
  }

  function renderTopics(t) {
    $('topics-distinct').textContent = '(' + fmt(t.distinct) + (t.distinct === 1 ? ' filter)' : ' filters)');
    rows($('topics'), t.topics, function (it) {
      return [{ text: it.filter }, { text: it.group || '' }, { text: fmt(it.subscribers), num: true }];
    });
  }

  function fail(err) {
    if (err instanceof Unauthorized) {
      stop();
      setStatus(token ? 'token refused' : 'token required', 'down');
      $('login').hidden = false;
      $('token').focus();
      return;
    }
    setStatus('disconnected', 'down');
  }

  function poll() {
    var withTopics = tick % TOPICS_EVERY === 0;
    tick++;
    api('api/stats').then(function (s) {
      render(s);
      setStatus('live', 'live');
      if (withTopics) return api('api/topics?limit=10').then(renderTopics);
    }).catch(fail);
  }

  function start() {
    stop();
    tick = 0;
    poll();
    timer = setInterval(poll, 1000);
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  $('login').addEventListener('submit', function (e) {
    e.preventDefault();
    token = $('token').value;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('login').hidden = true;
    setStatus('connecting…');
    start();
  });

  start();
}());
