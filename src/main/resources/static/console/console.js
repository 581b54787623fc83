// fvdisk console: reads and changes everything through the public API and actuator endpoints,
// with whatever credentials the browser already sends to this origin (the Basic challenge it
// answered to load the page). Nothing here has rights of its own: a section the token may not see
// says so, and a refused action shows the problem's detail.
//
// The page's Content-Security-Policy forbids inline styles, so every size is set through the
// CSSOM (element.style.width), and every text through textContent, never through HTML strings.
'use strict';

(() => {
  const IMAGES = '/api/v1/images';
  const REFRESH_MILLIS = 2000;
  // A map page holds up to 1000 extents; beyond this many pages the rest of the strip is drawn
  // as "not loaded" rather than holding the browser up.
  const MAX_MAP_PAGES = 10;
  const UNITS = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

  const state = {
    images: [],              // the image descriptors the token may see, by name
    imagesFromApi: true,     // false when only /actuator/storage's figures could be had
    snapshots: new Map(),    // image name -> its snapshots, oldest first
    prefetchSamples: new Map(), // image name -> { copiedBytes, atMillis, bytesPerSecond }
    selected: null,          // the chosen image's name
    mapKey: null,            // what the strip shows now, to redraw it only on a change
    chainsKey: null,         // likewise for the chains
    baseOptionsKey: null,    // likewise for the create form's base choices
    timer: null,
    refreshing: null,        // the refresh under way, if any
    refreshAgain: false,     // whether another was asked for meanwhile
  };

  const byId = (id) => document.getElementById(id);

  // ---- talking to the service ----

  /** A refused or failed request; its message is the problem's detail where there is one. */
  class ApiError extends Error {
    constructor(status, problem, fallback) {
      super(problem && (problem.detail || problem.title) ? (problem.detail || problem.title) : fallback);
      this.status = status;
      this.problem = problem;
    }

    /** What an operator reads: the status and title, then the detail. */
    describe() {
      const title = this.problem && this.problem.title ? this.problem.title : null;
      const head = this.status ? `${this.status}${title ? ' ' + title : ''}: ` : '';
      return head + this.message;
    }
  }

  /**
   * One request to the service. Answers with a status in `accepted` (besides 2xx) count as
   * answers too: health answers 503 with a body when DOWN.
   */
  async function call(method, path, body, accepted = []) {
    const headers = { Accept: 'application/json, application/problem+json' };
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, null, `the service did not answer ${method} ${path}`);
    }
    const text = await response.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch (e) {
        json = null;
      }
    }
    if (!response.ok && !accepted.includes(response.status)) {
      throw new ApiError(response.status, json, `${method} ${path} answered ${response.status}`);
    }
    return json;
  }

  const imagePath = (name) => `${IMAGES}/${encodeURIComponent(name)}`;

  // ---- formatting ----

  function formatBytes(bytes) {
    if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return '?';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let value = bytes;
    let unit = 0;
    while (Math.abs(value) >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
  }

  function formatPercent(part, whole) {
    if (!whole) return '0%';
    const percent = (100 * part) / whole;
    return percent > 0 && percent < 0.1 ? '<0.1%' : `${percent.toFixed(1)}%`;
  }

  /** "4M", "1.5 G", "1048576" -> bytes (binary units); null when it is not a size. */
  function parseSize(text) {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
    if (!match) return null;
    const bytes = Number(match[1]) * UNITS[match[2].toUpperCase()];
    return Number.isSafeInteger(Math.round(bytes)) ? Math.round(bytes) : null;
  }

  /** A base as the API names it, "golden" or "golden@snapshot", split into its two parts. */
  function splitBase(base) {
    const at = base.indexOf('@');
    return at < 0 ? { image: base, snapshot: null } : { image: base.slice(0, at), snapshot: base.slice(at + 1) };
  }

  // ---- small DOM helpers ----

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined && text !== null) made.textContent = text;
    return made;
  }

  function setFigures(list, pairs) {
    list.replaceChildren();
    for (const [term, value, title] of pairs) {
      const dt = element('dt', null, term);
      const dd = element('dd', null, value);
      if (title) dd.title = title;
      list.append(dt, dd);
    }
  }

  function showNote(id, text) {
    const note = byId(id);
    note.textContent = text || '';
    note.hidden = !text;
  }

  /** A bar whose fill is `part` of `whole`, labelled for screen readers. */
  function bar(className, part, whole, label) {
    const track = element('span', 'bar');
    track.setAttribute('role', 'img');
    track.setAttribute('aria-label', label);
    const fill = element('span', `fill ${className}`);
    fill.style.width = `${whole > 0 ? Math.min(100, (100 * part) / whole) : 0}%`;
    track.append(fill);
    return track;
  }

  function refusalText(error, what) {
    if (error.status === 403) return `This token may not see ${what} (${error.message}).`;
    return `${what} could not be read: ${error.describe()}`;
  }

  // ---- refreshing ----

  /**
   * Reads everything once more and redraws. A call while a refresh runs waits for a further one to
   * finish, so what an action changed is always on screen when its call returns.
   */
  function refresh() {
    if (state.refreshing) {
      state.refreshAgain = true;
      return state.refreshing;
    }
    state.refreshing = (async () => {
      try {
        do {
          state.refreshAgain = false;
          await refreshOnce();
        } while (state.refreshAgain);
      } finally {
        state.refreshing = null;
      }
    })();
    return state.refreshing;
  }

  async function refreshOnce() {
    const [images, storage, health, connections, inProgress] = await Promise.allSettled([
      call('GET', IMAGES),
      call('GET', '/actuator/storage'),
      call('GET', '/actuator/health', undefined, [503]),
      call('GET', '/actuator/metrics/fvdisk.nbd.connections'),
      call('GET', '/actuator/metrics/fvdisk.nbd.requests.in.progress'),
    ]);
    renderHealth(health);
    renderNbd(connections, inProgress);
    renderStorage(storage);
    await takeImages(images, storage);
    renderImages();
    renderChains();
    renderBaseOptions();
    await renderDetail();
    byId('last-refresh').textContent = `refreshed at ${new Date().toLocaleTimeString()}`;
  }

  function scheduleRefresh() {
    clearTimeout(state.timer);
    if (byId('auto-refresh').checked) {
      state.timer = setTimeout(async () => {
        try {
          await refresh();
        } finally {
          scheduleRefresh();
        }
      }, REFRESH_MILLIS);
    }
  }

  function renderHealth(result) {
    const badge = byId('health');
    if (result.status === 'rejected') {
      badge.dataset.status = 'UNKNOWN';
      byId('health-status').textContent = 'unknown';
      setFigures(byId('health-figures'), []);
      showNote('health-note', `Health could not be read: ${result.reason.describe()}`);
      return;
    }
    const health = result.value || {};
    const status = health.status || 'UNKNOWN';
    badge.dataset.status = status;
    byId('health-status').textContent = status;
    const storage = health.components && health.components.storage;
    const details = storage && storage.details;
    if (!details) {
      setFigures(byId('health-figures'), [['Status', status]]);
      showNote('health-note', 'Health details need a token with the monitor role.');
      return;
    }
    const failed = Object.keys(details.failedImages || {});
    const latched = details.latchedImages || [];
    setFigures(byId('health-figures'), [
      ['Status', status],
      ['Data directory', `${details.path || '?'} (${details.writable ? 'writable' : 'not writable'})`],
      ['Free on its file system', formatBytes(details.freeBytes), `${details.freeBytes} bytes`],
      ['Kept free (min free space)', formatBytes(details.thresholdBytes), `${details.thresholdBytes} bytes`],
      ['Open images', String(details.openImages)],
      ['Failed to open', failed.length ? failed.join(', ') : 'none'],
      ['Latched after a failed flush', latched.length ? [].concat(latched).join(', ') : 'none'],
    ]);
    showNote('health-note', null);
  }

  function gaugeValue(metric) {
    const measurement = (metric.measurements || []).find((m) => m.statistic === 'VALUE');
    return measurement ? measurement.value : null;
  }

  function renderNbd(connections, inProgress) {
    const list = byId('nbd-figures');
    if (connections.status === 'rejected') {
      setFigures(list, []);
      const error = connections.reason;
      showNote('nbd-note', error.status === 404
        ? 'NBD: the listener is off, so there are no sessions.'
        : refusalText(error, 'NBD sessions'));
      return;
    }
    const rows = [['Open NBD sessions', String(gaugeValue(connections.value))]];
    if (inProgress.status === 'fulfilled') {
      rows.push(['NBD requests in progress', String(gaugeValue(inProgress.value))]);
    }
    setFigures(list, rows);
    showNote('nbd-note', null);
  }

  function renderStorage(result) {
    const figures = byId('storage-figures');
    const storageBar = byId('storage-bar');
    const fill = storageBar.querySelector('.fill');
    if (result.status === 'rejected') {
      setFigures(figures, []);
      fill.style.width = '0%';
      storageBar.setAttribute('aria-label', 'storage use not known');
      showNote('storage-note', refusalText(result.reason, 'the storage totals'));
      return;
    }
    const s = result.value;
    const capacity = s.usedBytes + s.availableBytes;
    fill.style.width = `${capacity > 0 ? (100 * s.usedBytes) / capacity : 0}%`;
    storageBar.setAttribute('aria-label',
      `${formatBytes(s.usedBytes)} used of ${formatBytes(capacity)} usable, ${formatPercent(s.usedBytes, capacity)}`);
    setFigures(figures, [
      ['Used', `${formatBytes(s.usedBytes)} (${formatPercent(s.usedBytes, capacity)} of used + available)`, `${s.usedBytes} bytes`],
      ['Available', formatBytes(s.availableBytes), `${s.availableBytes} bytes`],
      ['Provisioned', formatBytes(s.provisionedBytes), `${s.provisionedBytes} bytes: the sum of virtual sizes`],
      ['Leaked chunks', String(s.leakedChunks)],
      ['Images open', String((s.images || []).length)],
    ]);
    showNote('storage-note', s.leakedChunks > 0
      ? `${s.leakedChunks} leaked chunk(s): "Check and repair" on the image reclaims them.`
      : null);
  }

  /**
   * The images the token may see. A monitor token may not list them through the API, but the
   * storage endpoint names them with their figures, which is enough for the table.
   */
  async function takeImages(images, storage) {
    if (images.status === 'fulfilled') {
      state.images = images.value.images || [];
      state.imagesFromApi = true;
      showNote('images-note', null);
    } else if (storage.status === 'fulfilled') {
      state.images = (storage.value.images || []).map((i) => ({
        name: i.name,
        sizeBytes: i.provisionedBytes,
        storage: { usedBytes: i.usedBytes, fileBytes: i.fileBytes, leakedChunks: i.leakedChunks },
        fromStorageEndpoint: true,
      }));
      state.imagesFromApi = false;
      showNote('images-note',
        `${refusalText(images.reason, 'the image list')} The figures below come from /actuator/storage.`);
    } else {
      state.images = [];
      state.imagesFromApi = false;
      showNote('images-note', refusalText(images.reason, 'the image list'));
    }
    samplePrefetch();
    // Snapshots only for the images that have some: one request each.
    const withSnapshots = state.images.filter((i) => i.snapshotCount > 0);
    const lists = await Promise.allSettled(
      withSnapshots.map((i) => call('GET', `${imagePath(i.name)}/snapshots`)));
    state.snapshots = new Map();
    withSnapshots.forEach((image, index) => {
      if (lists[index].status === 'fulfilled') {
        state.snapshots.set(image.name, lists[index].value.snapshots || []);
      }
    });
    if (state.selected && !state.images.some((i) => i.name === state.selected)) {
      select(null);
    }
  }

  /** Prefetch rates from the copied bytes of two refreshes in a row. */
  function samplePrefetch() {
    const now = performance.now();
    const seen = new Set();
    for (const image of state.images) {
      if (!image.prefetch) continue;
      seen.add(image.name);
      const previous = state.prefetchSamples.get(image.name);
      const copied = image.prefetch.copiedBytes;
      let rate = null;
      if (previous && now > previous.atMillis && copied >= previous.copiedBytes) {
        const sample = ((copied - previous.copiedBytes) * 1000) / (now - previous.atMillis);
        // Smoothed, so one slow poll does not make the figure jump.
        rate = previous.bytesPerSecond === null ? sample : 0.5 * previous.bytesPerSecond + 0.5 * sample;
      }
      state.prefetchSamples.set(image.name, { copiedBytes: copied, atMillis: now, bytesPerSecond: rate });
    }
    for (const name of [...state.prefetchSamples.keys()]) {
      if (!seen.has(name)) state.prefetchSamples.delete(name);
    }
  }

  function clonesOf(name) {
    return state.images.filter((i) => i.base && splitBase(i.base).image === name).map((i) => i.name);
  }

  // ---- the images table: rows are kept per image and updated in place, so focus stays put ----

  const rows = new Map();

  function renderImages() {
    const body = byId('images-body');
    const names = state.images.map((i) => i.name);
    for (const [name, row] of rows) {
      if (!names.includes(name)) {
        row.remove();
        rows.delete(name);
      }
    }
    const largest = {
      sizeBytes: Math.max(0, ...state.images.map((i) => i.sizeBytes)),
      fileBytes: Math.max(0, ...state.images.map((i) => i.storage.fileBytes)),
    };
    state.images.forEach((image, index) => {
      let row = rows.get(image.name);
      if (!row) {
        row = newRow(image.name);
        rows.set(image.name, row);
      }
      if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
      updateRow(row, image, largest);
    });
    byId('images-empty').hidden = state.images.length > 0;
  }

  function newRow(name) {
    const row = element('tr');
    row.dataset.image = name;
    const head = element('th');
    head.scope = 'row';
    const choose = element('button', 'image-select', name);
    choose.type = 'button';
    choose.addEventListener('click', () => select(name, true));
    head.append(choose);
    row.append(head);
    for (const [cell, label] of [['marks', 'Marks'], ['size', 'Size'], ['used', 'Used'], ['file', 'File'],
      ['prefetch', 'Prefetch']]) {
      const td = element('td', `${cell}-cell`);
      td.dataset.label = label;  // the label a narrow window shows beside the value
      td.append(element('div', 'cell-value'));
      row.append(td);
    }
    return row;
  }

  function updateRow(row, image, largest) {
    const selected = image.name === state.selected;
    row.classList.toggle('selected', selected);
    row.querySelector('.image-select').setAttribute('aria-pressed', String(selected));
    const size = image.sizeBytes;
    const used = image.storage.usedBytes;
    const file = image.storage.fileBytes;

    const marks = row.querySelector('.marks-cell .cell-value');
    marks.replaceChildren();
    if (image.readOnly) marks.append(element('span', 'mark mark-read-only', 'read-only'));
    const clones = clonesOf(image.name);
    if (clones.length) marks.append(element('span', 'mark mark-base', `base of ${clones.length}`));
    if (image.base) marks.append(element('span', 'mark mark-clone', `clone of ${image.base}`));
    if (image.snapshotCount) marks.append(element('span', 'mark', `${image.snapshotCount} snapshot(s)`));
    if (image.copyOnRead) marks.append(element('span', 'mark', 'copy-on-read'));
    if (image.storage.leakedChunks) marks.append(element('span', 'mark', `${image.storage.leakedChunks} leaked`));

    // Used against the image's own size: how full it is. Size and file against the largest in the
    // list, so images compare at a glance (a file also holds the journal and metadata, and may be
    // far larger than the data it maps).
    fillBarCell(row.querySelector('.size-cell .cell-value'), 'fill-size', size, largest.sizeBytes,
      formatBytes(size), `${size} bytes of virtual size; the bar is against the largest image listed`);
    fillBarCell(row.querySelector('.used-cell .cell-value'), 'fill-used', used, size,
      `${formatBytes(used)} (${formatPercent(used, size)})`,
      `${used} bytes held in chunks, ${formatPercent(used, size)} of the virtual size`);
    fillBarCell(row.querySelector('.file-cell .cell-value'), 'fill-file', file, largest.fileBytes,
      formatBytes(file), `${file} bytes: the length of the image file; the bar is against the largest file listed`);

    updatePrefetchCell(row.querySelector('.prefetch-cell .cell-value'), image);
  }

  function fillBarCell(cell, className, part, whole, text, title) {
    cell.replaceChildren();
    const box = element('span', 'bar-cell');
    box.append(bar(className, part, whole, text), element('span', 'figure', text));
    box.title = title;
    cell.append(box);
  }

  function updatePrefetchCell(cell, image) {
    const prefetch = image.prefetch;
    if (!prefetch || (prefetch.state === 'disabled' && !image.base)) {
      cell.replaceChildren(element('span', 'muted', image.fromStorageEndpoint ? '?' : '—'));
      return;
    }
    let progress = cell.querySelector('progress');
    if (!progress) {
      cell.replaceChildren();
      const stateText = element('span', 'prefetch-state');
      progress = element('progress');
      progress.setAttribute('aria-label', `Prefetch of ${image.name}`);
      const detail = element('span', 'prefetch-detail small');
      cell.append(stateText, progress, detail);
    }
    const total = prefetch.totalBytes;
    const done = prefetch.state === 'done';
    progress.max = Math.max(total, 1);
    progress.value = done ? progress.max : Math.min(prefetch.copiedBytes, progress.max);
    cell.querySelector('.prefetch-state').textContent = prefetch.state;
    const sample = state.prefetchSamples.get(image.name);
    const parts = [formatPercent(done ? total : prefetch.copiedBytes, total)];
    if (!done && prefetch.state !== 'disabled' && sample && sample.bytesPerSecond !== null) {
      parts.push(`${formatBytes(Math.round(sample.bytesPerSecond))}/s`);
    }
    if (prefetch.reason) parts.push(prefetch.reason);
    cell.querySelector('.prefetch-detail').textContent = ` ${parts.join(' · ')}`;
  }

  // ---- the chains: every image under the image (or snapshot) it reads from ----

  function renderChains() {
    const known = new Set(state.images.map((i) => i.name));
    const shape = state.images.map((i) => [i.name, i.base, (state.snapshots.get(i.name) || []).map((s) => s.name)]);
    const key = JSON.stringify(shape);
    if (key === state.chainsKey) return;
    state.chainsKey = key;
    const container = byId('chains');
    container.replaceChildren();
    if (!state.imagesFromApi) {
      container.append(element('p', 'muted', 'The chains need a token that may list images.'));
      return;
    }
    const roots = state.images.filter((i) => !i.base || !known.has(splitBase(i.base).image));
    const list = element('ul', 'chain');
    for (const root of roots) list.append(chainItem(root));
    container.append(list);
  }

  function chainItem(image) {
    const item = element('li');
    item.dataset.image = image.name;
    const choose = element('button', 'image-select', image.name);
    choose.type = 'button';
    choose.setAttribute('aria-label', `${image.name}: show details`);
    choose.addEventListener('click', () => select(image.name, true));
    item.append(choose);
    if (image.readOnly) item.append(' ', element('span', 'mark mark-read-only', 'read-only'));
    if (image.base) {
      const base = splitBase(image.base);
      const visible = state.images.some((i) => i.name === base.image);
      if (!visible) item.append(' ', element('span', 'muted small', `(reads ${image.base}, not visible to this token)`));
    }
    const children = element('ul');
    for (const snapshot of state.snapshots.get(image.name) || []) {
      const snapshotItem = element('li');
      snapshotItem.dataset.snapshot = `${image.name}@${snapshot.name}`;
      snapshotItem.append(element('span', 'snapshot-name', `snapshot ${snapshot.name}`),
        element('span', 'muted small', ` taken ${new Date(snapshot.createdAt).toLocaleString()}`));
      const snapshotClones = element('ul');
      for (const clone of state.images.filter((i) => i.base === `${image.name}@${snapshot.name}`)) {
        snapshotClones.append(chainItem(clone));
      }
      if (snapshotClones.children.length) snapshotItem.append(snapshotClones);
      children.append(snapshotItem);
    }
    for (const clone of state.images.filter((i) => i.base === image.name)) {
      children.append(chainItem(clone));
    }
    if (children.children.length) item.append(children);
    return item;
  }

  // ---- the create form's bases: read-only images and every snapshot ----

  function renderBaseOptions() {
    const choices = [];
    for (const image of state.images) {
      if (image.readOnly) choices.push(image.name);
      for (const snapshot of state.snapshots.get(image.name) || []) choices.push(`${image.name}@${snapshot.name}`);
    }
    const key = JSON.stringify(choices);
    if (key === state.baseOptionsKey) return;
    state.baseOptionsKey = key;
    const select = byId('create-base');
    const chosen = select.value;
    for (const option of [...select.options].slice(1)) option.remove();
    for (const choice of choices) {
      const option = element('option', null, choice.includes('@') ? `${choice} (snapshot)` : choice);
      option.value = choice;
      select.append(option);
    }
    select.value = choices.includes(chosen) ? chosen : '';
  }

  // ---- the chosen image ----

  function select(name, moveFocus = false) {
    state.selected = name;
    state.mapKey = null;
    byId('images-result').textContent = '';
    byId('detail-error').textContent = '';
    byId('detail-result').textContent = '';
    for (const [rowName, row] of rows) {
      row.classList.toggle('selected', rowName === name);
      row.querySelector('.image-select').setAttribute('aria-pressed', String(rowName === name));
    }
    byId('detail-empty').hidden = name !== null;
    byId('detail-body').hidden = name === null;
    byId('detail-heading').textContent = name === null ? 'Image details' : `Image details: ${name}`;
    byId('grow-size').value = '';
    // The address names the chosen image, so a reload or a bookmark comes back to it.
    history.replaceState(null, '', name === null ? location.pathname : `#image=${encodeURIComponent(name)}`);
    if (name !== null) {
      renderDetail();
      if (moveFocus) byId('detail-heading').focus();
    }
  }

  function selectedImage() {
    return state.images.find((i) => i.name === state.selected) || null;
  }

  async function renderDetail() {
    const image = selectedImage();
    if (!image) return;
    const figures = [['Size', formatBytes(image.sizeBytes), `${image.sizeBytes} bytes`]];
    if (!image.fromStorageEndpoint) {
      figures.push(
        ['Used', formatBytes(image.storage.usedBytes), `${image.storage.usedBytes} bytes`],
        ['Held by snapshots only', formatBytes(image.storage.snapshotBytes || 0)],
        ['File', formatBytes(image.storage.fileBytes), `${image.storage.fileBytes} bytes`],
        ['Chunk, block', `${formatBytes(image.chunkSizeBytes)}, ${formatBytes(image.blockSizeBytes)}`],
        ['Base', image.base || 'none'],
        ['Read-only', image.readOnly ? 'yes' : 'no'],
        ['Copy-on-read', image.copyOnRead ? 'on' : 'off'],
        ['Prefetch', `${image.prefetch.enabled ? 'on' : 'off'}, ${image.prefetch.state}`
          + (image.prefetch.reason ? ` (${image.prefetch.reason})` : '')],
        ['Created', new Date(image.createdAt).toLocaleString()]);
    }
    setFigures(byId('detail-figures'), figures);
    byId('toggle-read-only').textContent = image.readOnly ? 'Make writable' : 'Mark read-only';
    byId('toggle-copy-on-read').textContent = image.copyOnRead ? 'Turn copy-on-read off' : 'Turn copy-on-read on';
    const prefetchOn = image.prefetch && image.prefetch.enabled;
    byId('toggle-prefetch').textContent = prefetchOn ? 'Turn prefetch off' : 'Turn prefetch on';
    renderSnapshotList(image);
    await renderMap(image);
  }

  function renderSnapshotList(image) {
    const list = byId('snapshot-list');
    const snapshots = state.snapshots.get(image.name) || [];
    list.replaceChildren();
    if (!snapshots.length) {
      list.append(element('li', 'muted', 'none'));
      return;
    }
    for (const snapshot of snapshots) {
      list.append(element('li', null,
        `${snapshot.name}: taken ${new Date(snapshot.createdAt).toLocaleString()}, `
        + `${formatBytes(snapshot.usedBytes)} held only by it`));
    }
  }

  /** The whole map, page by page, as extents {offsetBytes, lengthBytes, state}. */
  async function loadMap(name) {
    const extents = [];
    let offset = 0;
    for (let page = 0; page < MAX_MAP_PAGES; page++) {
      const path = `${imagePath(name)}/map` + (offset ? `?offsetBytes=${offset}` : '');
      const answer = await call('GET', path);
      extents.push(...answer.extents);
      if (answer.nextOffsetBytes === null || answer.nextOffsetBytes === undefined) {
        return { extents, complete: true };
      }
      offset = answer.nextOffsetBytes;
    }
    return { extents, complete: false };
  }

  async function renderMap(image) {
    const name = image.name;
    let map;
    try {
      map = await loadMap(name);
    } catch (error) {
      if (state.selected !== name) return;
      state.mapKey = null;
      byId('map-strip').replaceChildren();
      byId('map-legend').replaceChildren();
      showNote('map-note', refusalText(error, 'the allocation map'));
      return;
    }
    if (state.selected !== name) return;
    const key = JSON.stringify([name, image.sizeBytes, map]);
    if (key === state.mapKey) return;
    state.mapKey = key;
    drawStrip(image.sizeBytes, map);
  }

  function drawStrip(sizeBytes, map) {
    const strip = byId('map-strip');
    const totals = { data: 0, base: 0, zero: 0, unknown: 0 };
    const segments = [];
    let covered = 0;
    for (const extent of map.extents) {
      // Adjacent extents in one state make one segment: fewer elements, the same proportions.
      const last = segments[segments.length - 1];
      if (last && last.state === extent.state && last.endBytes === extent.offsetBytes) {
        last.lengthBytes += extent.lengthBytes;
        last.endBytes += extent.lengthBytes;
      } else {
        segments.push({ state: extent.state, offsetBytes: extent.offsetBytes, lengthBytes: extent.lengthBytes,
          endBytes: extent.offsetBytes + extent.lengthBytes });
      }
      covered = extent.offsetBytes + extent.lengthBytes;
    }
    if (covered < sizeBytes) {
      segments.push({ state: 'unknown', offsetBytes: covered, lengthBytes: sizeBytes - covered, endBytes: sizeBytes });
    }
    strip.replaceChildren();
    for (const segment of segments) {
      const known = Object.prototype.hasOwnProperty.call(totals, segment.state) ? segment.state : 'unknown';
      totals[known] += segment.lengthBytes;
      const piece = element('span', `segment segment-${known}`);
      piece.dataset.state = segment.state;
      piece.style.width = `${(100 * segment.lengthBytes) / sizeBytes}%`;
      piece.title = `${segment.state}: bytes ${segment.offsetBytes} to ${segment.endBytes - 1}`
        + ` (${formatBytes(segment.lengthBytes)})`;
      strip.append(piece);
    }
    const words = { data: 'data (held by the image)', base: 'base (read from the base image)',
      zero: 'zero (never written)', unknown: 'not loaded' };
    const legend = byId('map-legend');
    legend.replaceChildren();
    const summary = [];
    for (const kind of ['data', 'base', 'zero', 'unknown']) {
      if (!totals[kind] && kind === 'unknown') continue;
      const item = element('li');
      item.dataset.state = kind;
      item.append(element('span', `swatch segment-${kind}`),
        `${words[kind]}: ${formatBytes(totals[kind])} (${formatPercent(totals[kind], sizeBytes)})`);
      legend.append(item);
      summary.push(`${kind} ${formatPercent(totals[kind], sizeBytes)}`);
    }
    strip.setAttribute('aria-label', `Allocation map: ${summary.join(', ')}`);
    showNote('map-note', map.complete ? null
      : `The map has more than ${MAX_MAP_PAGES} pages; only its start is drawn.`);
  }

  // ---- actions: each through the public API, each refusal shown with its detail ----

  /** Runs `action` for the chosen image, shows `done` or the refusal, then refreshes. */
  async function act(button, action, done) {
    const name = state.selected;
    if (!name) return;
    byId('detail-error').textContent = '';
    byId('detail-result').textContent = '';
    if (button) button.disabled = true;
    try {
      const answer = await action(name);
      byId('detail-result').textContent = typeof done === 'function' ? done(answer, name) : done;
    } catch (error) {
      byId('detail-error').textContent = error instanceof ApiError ? error.describe() : String(error);
    } finally {
      if (button) button.disabled = false;
    }
    await refresh();
  }

  function patchSelected(changes) {
    return (name) => call('PATCH', imagePath(name), changes);
  }

  function wireActions() {
    byId('toggle-read-only').addEventListener('click', (event) => {
      const image = selectedImage();
      if (!image) return;
      const readOnly = !image.readOnly;
      act(event.currentTarget, patchSelected({ readOnly }),
        (_, name) => `${name} is ${readOnly ? 'read-only' : 'writable'} now.`);
    });
    byId('toggle-copy-on-read').addEventListener('click', (event) => {
      const image = selectedImage();
      if (!image) return;
      const copyOnRead = !image.copyOnRead;
      act(event.currentTarget, patchSelected({ copyOnRead }),
        (_, name) => `Copy-on-read is ${copyOnRead ? 'on' : 'off'} for ${name}.`);
    });
    byId('toggle-prefetch').addEventListener('click', (event) => {
      const image = selectedImage();
      if (!image || !image.prefetch) return;
      const enabled = !image.prefetch.enabled;
      act(event.currentTarget, patchSelected({ prefetch: { enabled } }),
        (answer, name) => `Prefetch is ${enabled ? 'on' : 'off'} for ${name} (${answer.prefetch.state}).`);
    });
    const check = (repair) => (event) => act(event.currentTarget,
      (name) => call('POST', `${imagePath(name)}/check${repair ? '?repair=true' : ''}`),
      (answer, name) => `Check of ${name}: ${answer.status}, ${answer.leakedChunks} leaked chunk(s)`
        + (repair ? `, ${answer.reclaimedChunks} reclaimed` : '')
        + (answer.problems.length ? `; problems: ${answer.problems.join('; ')}` : '') + '.');
    byId('check').addEventListener('click', check(false));
    byId('repair').addEventListener('click', check(true));

    byId('grow-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const text = byId('grow-size').value;
      const sizeBytes = parseSize(text);
      if (sizeBytes === null) {
        byId('detail-error').textContent = `"${text}" is not a size: give bytes, or a number with K, M, G or T.`;
        return;
      }
      act(event.submitter, patchSelected({ sizeBytes }),
        (answer, name) => `${name} is ${formatBytes(answer.sizeBytes)} now.`);
    });

    byId('snapshot-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const snapshotName = byId('snapshot-name').value.trim();
      act(event.submitter, (name) => call('POST', `${imagePath(name)}/snapshots`, { name: snapshotName }),
        (answer, name) => {
          byId('snapshot-name').value = '';
          return `Snapshot ${answer.name} of ${name} taken.`;
        });
    });

    const dialog = byId('delete-dialog');
    byId('delete').addEventListener('click', () => {
      if (!state.selected) return;
      byId('delete-dialog-name').textContent = state.selected;
      byId('delete-confirm').textContent = `Delete ${state.selected}`;
      dialog.dataset.image = state.selected;
      dialog.returnValue = '';
      dialog.showModal();
    });
    dialog.addEventListener('close', () => {
      const name = dialog.dataset.image;
      if (dialog.returnValue !== 'confirm' || name !== state.selected) {
        byId('delete').focus();
        return;
      }
      act(null, (chosen) => call('DELETE', imagePath(chosen)), `${name} is deleted.`).then(() => {
        if (state.selected === null) {
          // The details went with the image, so the result is told above the list instead.
          byId('images-result').textContent = `${name} is deleted.`;
          byId('images-heading').focus();
        } else {
          byId('delete').focus();
        }
      });
    });
  }

  function wireCreate() {
    byId('create-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const error = byId('create-error');
      const result = byId('create-result');
      error.textContent = '';
      result.textContent = '';
      const body = { name: byId('create-name').value.trim() };
      const base = byId('create-base').value;
      const sizeText = byId('create-size').value.trim();
      if (base) body.base = base;
      if (sizeText) {
        const sizeBytes = parseSize(sizeText);
        if (sizeBytes === null) {
          error.textContent = `"${sizeText}" is not a size: give bytes, or a number with K, M, G or T.`;
          return;
        }
        body.sizeBytes = sizeBytes;
      }
      if (byId('create-copy-on-read').checked) body.copyOnRead = true;
      if (byId('create-prefetch').checked) body.prefetch = { enabled: true };
      const button = event.submitter;
      if (button) button.disabled = true;
      try {
        const created = await call('POST', IMAGES, body);
        result.textContent = `${created.name} created (${formatBytes(created.sizeBytes)}`
          + `${created.base ? `, a clone of ${created.base}` : ''}).`;
        byId('create-form').reset();
      } catch (e) {
        error.textContent = e instanceof ApiError ? e.describe() : String(e);
      } finally {
        if (button) button.disabled = false;
      }
      await refresh();
    });
  }

  function start() {
    wireActions();
    wireCreate();
    byId('refresh-now').addEventListener('click', () => refresh());
    byId('auto-refresh').addEventListener('change', scheduleRefresh);
    const linked = /^#image=(.+)$/.exec(location.hash);
    refresh()
      .then(() => {
        const name = linked ? decodeURIComponent(linked[1]) : null;
        if (name && state.images.some((i) => i.name === name)) select(name);
      })
      .finally(scheduleRefresh);
  }

  start();
})();
