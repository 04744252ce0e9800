// Floodgate dashboard: polls /admin/dashboard.json and draws it with plain
// SVG and tables. Counters in the document are cumulative; rates here are
// differences over the last few documents, so the server keeps no state
// per viewer. No dependencies, no build step.
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var DOC_URL = '/admin/dashboard.json';
  var params = new URLSearchParams(window.location.search);
  var interval = Math.max(200, Number(params.get('interval')) || 1000);
  var RATE_WINDOW = 5; // documents a rate is measured over
  var TRAIL = 60; // past points kept per scope
  var BANDS = ['0', '1-9', '10-19', '20-29', '30-39', '40-49', '50-59', '60-69', '70-79', '80-89', '90-100'];

  var history = [];
  var cards = new Map();

  // ---- small DOM helpers (text only: data never becomes markup) ----
  function h(tag, attrs) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function s(tag, attrs) {
    var e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    });
  }
  function append(e, c) {
    if (c === undefined || c === null) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(e, x); }); return; }
    e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  function fmt(v, digits) {
    if (!isFinite(v)) return '–';
    return Number(v).toFixed(digits === undefined ? 1 : digits);
  }
  function bar(cls, value, max, label) {
    var b = h('span', { 'class': 'bar ' + cls, 'aria-hidden': 'true' });
    b.style.width = (max > 0 ? Math.min(1, value / max) * 6 : 0) + 'rem';
    return [b, ' ', label];
  }
  function table(caption, headers, rows) {
    var t = h('table', null, caption ? h('caption', null, caption) : null);
    t.appendChild(h('thead', null, h('tr', null, headers.map(function (x) { return h('th', { scope: 'col' }, x); }))));
    var body = h('tbody');
    rows.forEach(function (r) { body.appendChild(r); });
    t.appendChild(body);
    return t;
  }

  // ---- rates over the document history ----
  function rate(get) {
    if (history.length < 2) return 0;
    var cur = history[history.length - 1], old = history[0];
    var dt = (Date.parse(cur.time) - Date.parse(old.time)) / 1000;
    if (!(dt > 0)) return 0;
    var d = (get(cur) || 0) - (get(old) || 0);
    return d > 0 ? d / dt : 0; // a counter that restarted reads 0, not negative
  }
  function byName(list, name) {
    for (var i = 0; list && i < list.length; i++) if (list[i].name === name) return list[i];
    return null;
  }

  // ---- the curve ----
  var W = 400, H = 220, L = 36, R = 12, T = 10, B = 30;
  function px(x) { return L + x * (W - L - R); }
  function py(c) { return T + (1 - c / 100) * (H - T - B); }
  function cutoffOf(k, x) { return Math.max(0, Math.min(100, 100 * (1 - k * x * x * x))); }
  function curvePath(k) {
    var d = '';
    for (var i = 0; i <= 80; i++) {
      var x = i / 80;
      d += (i ? ' L' : 'M') + px(x).toFixed(1) + ' ' + py(cutoffOf(k, x)).toFixed(1);
    }
    return d;
  }

  function newCard(name) {
    var root = h('article', { 'class': 'card', 'data-scope': name, 'aria-labelledby': 'scope-' + name });
    root.appendChild(h('h3', { id: 'scope-' + name }, name === 'global' ? 'global scope' : 'origin ' + name));
    var facts = h('p', { 'class': 'facts' });
    root.appendChild(facts);
    var title = s('title');
    var graph = s('svg', { 'class': 'curve', viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    graph.appendChild(title);
    [0, 0.25, 0.5, 0.75, 1].forEach(function (x) {
      graph.appendChild(s('line', { 'class': 'grid', x1: px(x), x2: px(x), y1: py(100), y2: py(0) }));
      var t = s('text', { x: px(x), y: H - 14, 'text-anchor': 'middle' });
      t.textContent = String(x);
      graph.appendChild(t);
    });
    [0, 25, 50, 75, 100].forEach(function (c) {
      graph.appendChild(s('line', { 'class': 'grid', x1: px(0), x2: px(1), y1: py(c), y2: py(c) }));
      var t = s('text', { x: L - 4, y: py(c) + 4, 'text-anchor': 'end' });
      t.textContent = String(c);
      graph.appendChild(t);
    });
    graph.appendChild(s('line', { 'class': 'axis', x1: px(0), x2: px(1), y1: py(0), y2: py(0) }));
    graph.appendChild(s('line', { 'class': 'axis', x1: px(0), x2: px(0), y1: py(0), y2: py(100) }));
    var xl = s('text', { x: px(0.5), y: H - 2, 'text-anchor': 'middle' });
    xl.textContent = 'overload x';
    graph.appendChild(xl);
    var marker = s('line', { 'class': 'pressure', y1: py(100), y2: py(0), visibility: 'hidden' });
    graph.appendChild(marker);
    var curve = s('path', { 'class': 'curve' });
    var trail = s('g', { 'class': 'trail' });
    var point = s('circle', { 'class': 'now', r: 6 });
    graph.appendChild(curve);
    graph.appendChild(trail);
    graph.appendChild(point);
    root.appendChild(graph);
    var signals = h('div');
    var bands = h('div');
    root.appendChild(signals);
    root.appendChild(bands);
    document.getElementById('scopes').appendChild(root);
    return { root: root, facts: facts, title: title, graph: graph, xlabel: xl, marker: marker, curve: curve, trail: trail, point: point, signals: signals, bands: bands, past: [] };
  }

  function signalValue(sig, v) {
    if (sig.name === 'latency') return fmt(v * 1000, 0) + ' ms';
    if (sig.name === 'error_rate' || sig.name === 'cpu') return fmt(v * 100, 1) + ' %';
    return fmt(v, 0);
  }

  function signalRow(sig) {
    var top = sig.max + (sig.max - sig.threshold); // raw values are capped here
    var meter = h('span', { 'class': 'meter', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': top, 'aria-valuenow': sig.smoothed,
      'aria-label': sig.name + ' ' + signalValue(sig, sig.smoothed) + ' of threshold ' + signalValue(sig, sig.threshold) + ', max ' + signalValue(sig, sig.max) });
    var fill = h('span', { 'class': 'fill' + (sig.overload > 0 ? ' hot' : '') });
    fill.style.width = (top > 0 ? Math.min(1, Math.max(0, sig.smoothed) / top) * 100 : 0) + '%';
    var tt = h('span', { 'class': 'tick', title: 'threshold' });
    tt.style.left = (top > 0 ? sig.threshold / top * 100 : 0) + '%';
    var tm = h('span', { 'class': 'tick', title: 'max' });
    tm.style.left = (top > 0 ? sig.max / top * 100 : 0) + '%';
    append(meter, [fill, tt, tm]);
    return h('tr', { 'data-signal': sig.name },
      h('td', null, sig.name + (sig.enabled ? '' : ' (off)')),
      h('td', null, signalValue(sig, sig.value)),
      h('td', null, meter),
      h('td', null, signalValue(sig, sig.threshold) + ' – ' + signalValue(sig, sig.max)),
      h('td', null, fmt(sig.overload, 2)));
  }

  // The point sits on the curve: at the controller's level where the
  // scope reports one (the cutoff follows the level, not the raw
  // pressure), else at the overload.
  function renderScope(sc) {
    var card = cards.get(sc.name);
    if (!card) { card = newCard(sc.name); cards.set(sc.name, card); }
    var overload = Math.max(0, Math.min(1, sc.overload || 0));
    var hasLevel = typeof sc.level === 'number';
    var x = hasLevel ? Math.max(0, Math.min(1, sc.level)) : overload;
    var c = Math.max(0, Math.min(100, sc.cutoff));
    card.curve.setAttribute('d', curvePath(sc.k));
    card.curve.setAttribute('data-k', sc.k);
    card.point.setAttribute('cx', px(x).toFixed(1));
    card.point.setAttribute('cy', py(c).toFixed(1));
    card.point.setAttribute('data-x', x);
    card.point.setAttribute('data-overload', overload);
    card.point.setAttribute('data-cutoff', c);
    if (hasLevel) card.point.setAttribute('data-level', x); else card.point.removeAttribute('data-level');
    // With a controller the axis is its level; the dashed line marks the
    // raw pressure (worst signal) it is moving toward.
    card.xlabel.textContent = hasLevel ? 'level x (dashed: overload now)' : 'overload x';
    card.marker.setAttribute('x1', px(overload).toFixed(1));
    card.marker.setAttribute('x2', px(overload).toFixed(1));
    card.marker.setAttribute('visibility', hasLevel ? 'visible' : 'hidden');
    card.past.push([x, c]);
    if (card.past.length > TRAIL) card.past.shift();
    card.trail.replaceChildren();
    card.past.forEach(function (p) { card.trail.appendChild(s('circle', { cx: px(p[0]).toFixed(1), cy: py(p[1]).toFixed(1), r: 3 })); });
    var summary = (sc.name === 'global' ? 'Global' : 'Origin ' + sc.name) + ' scope: overload ' + fmt(overload, 2) +
      (hasLevel ? ', level ' + fmt(x, 2) : '') + ', cutoff ' + fmt(c, 1) + ', k ' + sc.k;
    card.title.textContent = summary;
    card.graph.setAttribute('aria-label', summary);
    card.facts.replaceChildren();
    var lim = sc.adaptive_limit;
    append(card.facts, ['overload ', h('b', null, fmt(overload, 2)),
      hasLevel ? [' · level ', h('b', null, fmt(x, 2))] : null,
      ' · cutoff ', h('b', null, fmt(c, 1)),
      ' · k ', h('b', null, String(sc.k)), ' · in flight ', h('b', null, String(sc.in_flight || 0)),
      lim ? [' · adaptive limit ', h('b', null, fmt(lim.limit, 1)), lim.queue_waiting ? ' (' + lim.queue_waiting + ' queued)' : ''] : null,
      sc.dry_run ? [' · ', h('span', { 'class': 'dry' }, 'dry run')] : null]);

    card.signals.replaceChildren(table('Signals (bar: smoothed value; ticks: threshold, max)', ['signal', 'now', 'smoothed', 'threshold – max', 'x'],
      (sc.signals || []).map(signalRow)));

    var shed = BANDS.map(function (b) { return rate(function (d) { var o = byName(d.scopes, sc.name); return o && o.shed[b]; }); });
    var would = BANDS.map(function (b) { return rate(function (d) { var o = byName(d.scopes, sc.name); return o && o.would_shed[b]; }); });
    var top = Math.max.apply(null, shed.concat(would).concat([1]));
    var rows = [];
    BANDS.forEach(function (b, i) {
      if (i === 0 && !shed[i] && !would[i]) return; // score 0 is never shed
      rows.push(h('tr', { 'data-band': b, 'data-shed-rate': shed[i].toFixed(3), 'data-would-rate': would[i].toFixed(3) },
        h('th', { scope: 'row' }, b),
        h('td', null, bar('shed', shed[i], top, fmt(shed[i]))),
        h('td', null, bar('would', would[i], top, fmt(would[i])))));
    });
    card.bands.replaceChildren(table('Shed per second by priority band', ['band', 'shed/s', 'would shed/s (dry run)'], rows));
  }

  function renderRequests(doc) {
    var cats = Object.keys(doc.requests_by_category || {});
    var rates = cats.map(function (c) { return [c, rate(function (d) { return (d.requests_by_category || {})[c]; })]; });
    rates.sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); });
    var top = Math.max.apply(null, rates.map(function (r) { return r[1]; }).concat([1]));
    var box = document.getElementById('requests');
    if (!rates.length) { box.replaceChildren(h('p', { 'class': 'empty' }, 'no requests yet')); return; }
    box.replaceChildren(table(null, ['category', 'requests/s', 'total'], rates.map(function (r) {
      return h('tr', { 'data-category': r[0], 'data-rate': r[1].toFixed(3) },
        h('th', { scope: 'row' }, r[0]), h('td', null, bar('req', r[1], top, fmt(r[1]))),
        h('td', null, String(doc.requests_by_category[r[0]])));
    })));
  }

  function renderOrigins(doc) {
    var box = document.getElementById('origins');
    var list = doc.origins || [];
    if (!list.length) { box.replaceChildren(h('p', { 'class': 'empty' }, 'no origins configured')); return; }
    box.replaceChildren.apply(box, list.map(function (o) {
      var sc = byName(doc.scopes, o.name);
      var limit = sc && sc.adaptive_limit && sc.adaptive_limit.limit;
      var cap = o.name + ' · in flight ' + o.in_flight + (limit ? ' · adaptive limit ' + fmt(limit, 1) : '') +
        ' · ' + o.instances.length + ' instance' + (o.instances.length === 1 ? '' : 's');
      return table(cap, ['instance', 'weight', 'in flight', 'breaker', 'health', 'latency EWMA', 'req/s', 'failures/s'], o.instances.map(function (i) {
        var rq = rate(function (d) { var x = byName(d.origins, o.name); x = x && x.instances.filter(function (y) { return y.address === i.address; })[0]; return x && x.requests; });
        var fl = rate(function (d) { var x = byName(d.origins, o.name); x = x && x.instances.filter(function (y) { return y.address === i.address; })[0]; return x && x.failures; });
        return h('tr', { 'data-instance': i.address },
          h('td', null, i.address), h('td', null, String(i.weight)), h('td', null, String(i.in_flight)),
          h('td', { 'class': 'breaker-' + i.breaker }, i.breaker), h('td', { 'class': i.healthy ? '' : 'unhealthy' }, i.healthy ? 'healthy' : 'unhealthy'),
          h('td', null, fmt(i.latency_ewma_ms, 1) + ' ms'), h('td', null, fmt(rq)), h('td', null, fmt(fl)));
      }));
    }));
  }

  function renderRateLimits(doc) {
    var box = document.getElementById('ratelimits');
    var list = doc.rate_limits || [];
    if (!list.length) { box.replaceChildren(h('p', { 'class': 'empty' }, 'no rate-limit policies')); return; }
    box.replaceChildren(table(null, ['policy', 'rate/s', 'burst', 'tracked keys', 'admitted/s', 'rejected/s', 'overflow bucket use/s', 'overflow rejected/s'], list.map(function (p) {
      function r(field) { return rate(function (d) { var x = byName(d.rate_limits, p.name); return x && x[field]; }); }
      var keys = p.max_keys > 0 ? p.keys + ' / ' + p.max_keys + (p.keys >= p.max_keys ? ' (full)' : '') : String(p.keys);
      return h('tr', { 'data-policy': p.name },
        h('td', null, p.name), h('td', null, fmt(p.rate)), h('td', null, String(p.burst)), h('td', null, keys),
        h('td', null, fmt(r('admitted'))), h('td', null, fmt(r('rejected'))), h('td', null, fmt(r('overflowed'))), h('td', null, fmt(r('overflow_rejected'))));
    })));
  }

  function renderExtra(doc) {
    var names = Object.keys(doc.extra || {}).sort();
    var section = document.getElementById('extra-section');
    section.hidden = names.length === 0;
    document.getElementById('extra').replaceChildren.apply(document.getElementById('extra'), names.map(function (n) {
      var v = doc.extra[n];
      var rows = (v && typeof v === 'object') ? Object.keys(v).sort().map(function (k) {
        var x = v[k];
        return h('tr', null, h('td', null, k), h('td', null, typeof x === 'object' ? JSON.stringify(x) : String(x)));
      }) : [h('tr', null, h('td', null, n), h('td', null, String(v)))];
      return table(n, ['key', 'value'], rows);
    }));
  }

  function render(doc) {
    (doc.scopes || []).forEach(renderScope);
    cards.forEach(function (card, name) {
      if (!byName(doc.scopes, name)) { card.root.remove(); cards.delete(name); }
    });
    renderRequests(doc);
    renderOrigins(doc);
    renderRateLimits(doc);
    renderExtra(doc);
  }

  function setStatus(text, isError) {
    var st = document.getElementById('status');
    st.textContent = text;
    st.className = isError ? 'error' : '';
  }

  function poll() {
    fetch(DOC_URL, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (resp) {
        if (resp.status === 401) throw new Error('the admin token is required: reload the page and sign in');
        if (!resp.ok) throw new Error('admin answered ' + resp.status);
        return resp.json();
      })
      .then(function (doc) {
        history.push(doc);
        if (history.length > RATE_WINDOW) history.shift();
        render(doc);
        setStatus('updated ' + new Date(doc.time).toLocaleTimeString() + ' · every ' + (interval / 1000) + ' s', false);
      })
      .catch(function (err) { setStatus('not updating: ' + err.message, true); })
      .then(function () { window.setTimeout(poll, interval); });
  }

  poll();
})();
