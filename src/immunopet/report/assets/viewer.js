/*
 * immunopet report: the fused PET/CT viewer (glue between the report and NiiVue).
 *
 * Reads the volumes from <script type="application/json" id="viewer-data"> (written by
 * immunopet/report/_viewer.py: per volume a NIfTI-1 header and its voxels as deflated byte
 * planes, base-85 text), decodes them with the browser's own DecompressionStream and shows them with
 * NiiVue (global `niivue`, inlined before this script). No network request is made.
 *
 * Coordinates: the report speaks DICOM patient coordinates (LPS, mm); NiiVue speaks RAS, mm.
 * The two differ by the sign of x and y, converted in lpsToRas / rasToLps only.
 *
 * For tests and for the report's links: window.immunopetViewer (see the end of the file), and
 * any link <a class="show-in-viewer" data-timepoint data-tracer data-lps="[x, y, z]"> outside
 * the viewer moves the viewer there when clicked (all three attributes optional).
 */
(function () {
  'use strict';

  const root = document.getElementById('viewer');
  const dataElement = document.getElementById('viewer-data');
  if (!root || !dataElement) {
    return;
  }
  const byId = (id) => document.getElementById(id);
  const statusElement = byId('viewer-status');
  const DATA = JSON.parse(dataElement.textContent);
  const timepointById = new Map(DATA.timepoints.map((t) => [t.id, t]));
  const NIFTI_VOX_OFFSET = 352;
  const TYPED_ARRAYS = { uint8: Uint8Array, uint16: Uint16Array, int16: Int16Array, int32: Int32Array };

  const state = {
    timepoint: DATA.timepoints[0].id,
    tracer: null,
    layout: 'multiplanar',
    mip: true,
    outlines: true,
    ctWindow: DATA.ctWindowDefault,
    suvMax: {},
    lps: null,
    mipAngle: 0,
  };
  for (const [key, tracer] of Object.entries(DATA.tracers)) {
    state.suvMax[key] = tracer.suvMax;
  }
  const shown = { ct: null, pet: null, labels: null, petVolume: null, timepoint: null };
  let nv = null;
  let mip = null;

  let resolveReady;
  let rejectReady;
  const ready = new Promise((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined); // the status line reports a failure; callers may still await it

  /** A number as the report writes it: fixed decimals, a true minus sign. */
  function formatNumber(value, decimals) {
    return value.toFixed(decimals).replace('-', '\u2212');
  }

  function setStatus(text, isError) {
    statusElement.textContent = text;
    statusElement.classList.toggle('viewer-error', Boolean(isError));
  }

  // -- decoding -----------------------------------------------------------------------------------

  // Base-85 digits: Python's base64.b85encode alphabet with '.' instead of '<' (_viewer.base85).
  const BASE85 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;.=>?@^_`{|}~';
  const DIGIT = new Uint8Array(128).fill(255);
  for (let i = 0; i < BASE85.length; i++) {
    DIGIT[BASE85.charCodeAt(i)] = i;
  }

  /** Bytes of base-85 text (5 digits per big-endian 4-byte group), the first `length` of them. */
  function fromBase85(text, length) {
    const groups = text.length / 5;
    if (!Number.isInteger(groups) || length > 4 * groups) {
      throw new Error('corrupt image data in the report (base-85 text of the wrong length)');
    }
    const bytes = new Uint8Array(4 * groups);
    for (let g = 0, c = 0; g < groups; g++) {
      let word = 0;
      for (let k = 0; k < 5; k++, c++) {
        const digit = DIGIT[text.charCodeAt(c)];
        if (digit === 255) {
          throw new Error('corrupt image data in the report (not a base-85 digit)');
        }
        word = word * 85 + digit;
      }
      bytes[4 * g] = word >>> 24;
      bytes[4 * g + 1] = (word >>> 16) & 255;
      bytes[4 * g + 2] = (word >>> 8) & 255;
      bytes[4 * g + 3] = word & 255;
    }
    return bytes.subarray(0, length);
  }

  async function inflate(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  const decoded = new Map();

  /** The NIfTI-1 file of an encoded volume, as an ArrayBuffer (decoded once, then cached). */
  function niftiFile(volume) {
    if (!decoded.has(volume.name)) {
      decoded.set(
        volume.name,
        (async () => {
          const header = fromBase85(volume.header, NIFTI_VOX_OFFSET);
          const packed = fromBase85(volume.planes, volume.planesLength);
          const planes = await inflate(packed);
          const width = volume.bytesPerVoxel;
          const count = volume.count;
          if (planes.length !== width * count) {
            throw new Error(`${volume.name}: ${planes.length} bytes, expected ${width * count}`);
          }
          const file = new Uint8Array(NIFTI_VOX_OFFSET + width * count);
          file.set(header.subarray(0, NIFTI_VOX_OFFSET), 0);
          if (width === 1) {
            file.set(planes, NIFTI_VOX_OFFSET);
          } else {
            for (let b = 0; b < width; b++) {
              const plane = planes.subarray(b * count, (b + 1) * count);
              for (let i = 0, o = NIFTI_VOX_OFFSET + b; i < count; i++, o += width) {
                file[o] = plane[i];
              }
            }
          }
          return file.buffer;
        })(),
      );
    }
    return decoded.get(volume.name);
  }

  /** Voxel values (slope applied lazily) of an encoded volume, C order (slice, row, column). */
  async function voxels(volume) {
    const buffer = await niftiFile(volume);
    const Typed = TYPED_ARRAYS[volume.dtype];
    return new Typed(buffer, NIFTI_VOX_OFFSET, volume.count);
  }

  async function image(volume, colormap, opacity, calMin, calMax) {
    const buffer = (await niftiFile(volume)).slice(0);
    return niivue.NVImage.new(buffer, `${volume.name}.nii`, colormap, opacity, null, calMin, calMax, true);
  }

  // -- coordinates --------------------------------------------------------------------------------

  const lpsToRas = (p) => [-p[0], -p[1], p[2]];
  const rasToLps = (p) => [-p[0], -p[1], p[2]];

  function crosshairLps() {
    const mm = nv.frac2mm(nv.scene.crosshairPos);
    return rasToLps([mm[0], mm[1], mm[2]]);
  }

  function valueAt(nvImage, lps) {
    if (!nvImage) {
      return NaN;
    }
    const ras = lpsToRas(lps);
    const vox = nvImage.mm2vox(ras);
    const dims = nvImage.dimsRAS;
    for (let a = 0; a < 3; a++) {
      if (vox[a] < 0 || vox[a] >= dims[a + 1]) {
        return NaN;
      }
    }
    return nvImage.getValue(vox[0], vox[1], vox[2]);
  }

  // -- display settings ---------------------------------------------------------------------------

  function ctRange() {
    const preset = DATA.ctWindows[state.ctWindow];
    return [preset.level_hu - preset.width_hu / 2, preset.level_hu + preset.width_hu / 2];
  }

  function petRange() {
    const top = state.suvMax[state.tracer];
    return [top * DATA.pet.transparent_below_fraction, top];
  }

  function labelColormap(vois) {
    const map = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: [''] };
    for (const voi of vois) {
      if (voi.label === null) {
        continue;
      }
      const lesion = voi.kind === 'lesion';
      map.R.push(lesion ? 80 : 120);
      map.G.push(lesion ? 255 : 170);
      map.B.push(lesion ? 80 : 255);
      map.A.push(0); // interiors transparent: with NiiVue's atlas outline only borders are drawn
      map.I.push(voi.label);
      map.labels.push(voi.text);
    }
    return map;
  }

  function applyLayout() {
    const types = niivue.SLICE_TYPE;
    if (state.layout === 'multiplanar') {
      // Whole-body scans are tall and narrow: a large axial slice, then coronal and sagittal.
      nv.setCustomLayout([
        { sliceType: types.AXIAL, position: [0, 0, 0.5, 1] },
        { sliceType: types.CORONAL, position: [0.5, 0, 0.25, 1] },
        { sliceType: types.SAGITTAL, position: [0.75, 0, 0.25, 1] },
      ]);
      nv.drawScene();
      return;
    }
    nv.clearCustomLayout();
    nv.setSliceType(
      { axial: types.AXIAL, coronal: types.CORONAL, sagittal: types.SAGITTAL, render: types.RENDER }[state.layout],
    );
  }

  function applyWindows() {
    if (shown.ct) {
      [shown.ct.cal_min, shown.ct.cal_max] = ctRange();
    }
    if (shown.pet) {
      [shown.pet.cal_min, shown.pet.cal_max] = petRange();
    }
    if (shown.labels) {
      shown.labels.opacity = state.outlines ? 1 : 0;
    }
    nv.updateGLVolume();
    byId('viewer-suv-max').value = String(state.suvMax[state.tracer]);
    drawMip();
  }

  // -- read-out -----------------------------------------------------------------------------------

  function suvAtCrosshair() {
    return valueAt(shown.pet, crosshairLps());
  }

  function updateReadout() {
    const lps = crosshairLps();
    state.lps = lps;
    const suv = valueAt(shown.pet, lps);
    const output = byId('viewer-suv');
    output.textContent = Number.isFinite(suv) ? formatNumber(suv, 3) : '–';
    output.dataset.value = Number.isFinite(suv) ? String(suv) : '';
    byId('viewer-position').textContent =
      `at LPS (${lps.map((x) => formatNumber(x, 1)).join(', ')}) mm, ${state.tracer}, ${state.timepoint}`;
    let voiText = '';
    if (shown.labels) {
      const label = Math.round(valueAt(shown.labels, lps));
      const voi = timepointById.get(state.timepoint).vois.find((v) => v.label === label);
      if (voi) {
        voiText = `in ${voi.text}`;
      }
    }
    byId('viewer-voi').textContent = voiText;
    drawMip();
  }

  function setCrosshairLps(lps) {
    nv.scene.crosshairPos = nv.mm2frac(lpsToRas(lps));
    nv.drawScene();
    updateReadout();
  }

  // -- MIP (computed here: NiiVue has no maximum-intensity projection) -----------------------------

  function invert3(m) {
    const [a, b, c] = [m[0][0], m[0][1], m[0][2]];
    const [d, e, f] = [m[1][0], m[1][1], m[1][2]];
    const [g, h, k] = [m[2][0], m[2][1], m[2][2]];
    const det = a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g);
    return [
      [(e * k - f * h) / det, (c * h - b * k) / det, (b * f - c * e) / det],
      [(f * g - d * k) / det, (a * k - c * g) / det, (c * d - a * f) / det],
      [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
    ];
  }

  /** Rotating MIP around the head-foot axis; angle 0 looks from the front (patient's right on the left). */
  function computeMip(volume, values, angleDeg) {
    const A = volume.affineLps;
    const M = invert3(A);
    const origin = [A[0][3], A[1][3], A[2][3]];
    const [ns, nr, nc] = volume.shape;
    const spacing = Math.min(
      ...[0, 1, 2].map((j) => Math.hypot(A[0][j], A[1][j], A[2][j])),
    );
    const angle = (angleDeg * Math.PI) / 180;
    const eu = [Math.cos(angle), Math.sin(angle), 0];
    const ed = [-Math.sin(angle), Math.cos(angle), 0];
    let [uMin, uMax, tMin, tMax, zMin, zMax] = [Infinity, -Infinity, Infinity, -Infinity, Infinity, -Infinity];
    for (const i of [0, ns - 1]) {
      for (const j of [0, nr - 1]) {
        for (const k of [0, nc - 1]) {
          const p = [0, 1, 2].map((r) => A[r][0] * i + A[r][1] * j + A[r][2] * k + A[r][3]);
          const u = p[0] * eu[0] + p[1] * eu[1];
          const t = p[0] * ed[0] + p[1] * ed[1];
          [uMin, uMax] = [Math.min(uMin, u), Math.max(uMax, u)];
          [tMin, tMax] = [Math.min(tMin, t), Math.max(tMax, t)];
          [zMin, zMax] = [Math.min(zMin, p[2]), Math.max(zMax, p[2])];
        }
      }
    }
    const width = Math.round((uMax - uMin) / spacing) + 1;
    const height = Math.round((zMax - zMin) / spacing) + 1;
    const depth = Math.round((tMax - tMin) / spacing) + 1;
    const toIndex = (p) => [0, 1, 2].map((r) => M[r][0] * (p[0] - origin[0]) + M[r][1] * (p[1] - origin[1]) + M[r][2] * (p[2] - origin[2]));
    const step = toIndex([origin[0] + ed[0] * spacing, origin[1] + ed[1] * spacing, origin[2]]);
    const projection = new Float32Array(width * height);
    const hottest = new Int32Array(width * height).fill(-1);
    const slope = volume.slope;
    const intercept = volume.intercept;
    for (let row = 0; row < height; row++) {
      const z = zMax - row * spacing;
      for (let col = 0; col < width; col++) {
        const u = uMin + col * spacing;
        const start = toIndex([u * eu[0] + tMin * ed[0], u * eu[1] + tMin * ed[1], z]);
        let [si, ri, ci] = start;
        let best = -Infinity;
        let bestIndex = -1;
        for (let d = 0; d < depth; d++, si += step[0], ri += step[1], ci += step[2]) {
          const s = Math.round(si);
          const r = Math.round(ri);
          const c = Math.round(ci);
          if (s < 0 || r < 0 || c < 0 || s >= ns || r >= nr || c >= nc) {
            continue;
          }
          const index = (s * nr + r) * nc + c;
          const value = values[index];
          if (value > best) {
            best = value;
            bestIndex = index;
          }
        }
        projection[row * width + col] = bestIndex < 0 ? 0 : best * slope + intercept;
        hottest[row * width + col] = bestIndex;
      }
    }
    return { volume, width, height, projection, hottest, uMin, zMax, spacing, eu, angleDeg };
  }

  function drawMip() {
    const canvas = byId('viewer-mip-canvas');
    const panel = byId('viewer-mip-panel');
    panel.hidden = !state.mip;
    if (!state.mip || !mip) {
      return;
    }
    const top = state.suvMax[state.tracer];
    const { width, height, projection } = mip;
    const pixels = new ImageData(width, height);
    for (let i = 0; i < projection.length; i++) {
      const grey = 255 * (1 - Math.min(1, Math.max(0, projection[i] / top)));
      pixels.data[4 * i] = grey;
      pixels.data[4 * i + 1] = grey;
      pixels.data[4 * i + 2] = grey;
      pixels.data[4 * i + 3] = 255;
    }
    const source = document.createElement('canvas');
    source.width = width;
    source.height = height;
    source.getContext('2d').putImageData(pixels, 0, 0);
    const ratio = window.devicePixelRatio || 1;
    const box = canvas.parentElement.getBoundingClientRect();
    const available = Math.max(100, box.height - 40);
    const scale = Math.min(available / height, Math.max(60, box.width - 8) / width);
    canvas.style.width = `${Math.round(width * scale)}px`;
    canvas.style.height = `${Math.round(height * scale)}px`;
    canvas.width = Math.round(width * scale * ratio);
    canvas.height = Math.round(height * scale * ratio);
    const context = canvas.getContext('2d');
    context.imageSmoothingEnabled = true;
    context.drawImage(source, 0, 0, canvas.width, canvas.height);
    if (state.lps) {
      const u = state.lps[0] * mip.eu[0] + state.lps[1] * mip.eu[1];
      const x = ((u - mip.uMin) / mip.spacing + 0.5) * scale * ratio;
      const y = ((mip.zMax - state.lps[2]) / mip.spacing + 0.5) * scale * ratio;
      context.strokeStyle = 'rgba(0, 120, 255, 0.9)';
      context.lineWidth = Math.max(1, ratio);
      const arm = 8 * ratio;
      context.beginPath();
      context.moveTo(x - 2 * arm, y);
      context.lineTo(x - arm / 2, y);
      context.moveTo(x + arm / 2, y);
      context.lineTo(x + 2 * arm, y);
      context.moveTo(x, y - 2 * arm);
      context.lineTo(x, y - arm / 2);
      context.moveTo(x, y + arm / 2);
      context.lineTo(x, y + 2 * arm);
      context.stroke();
    }
    const view = mip.angleDeg === 0 ? 'anterior view' : `rotated ${mip.angleDeg}° from the anterior view`;
    byId('viewer-mip-caption').textContent =
      `MIP, ${view}; ${DATA.tracers[state.tracer].label}, ${state.timepoint}; inverse grey, SUV 0–${top}`;
  }

  async function updateMip() {
    if (!shown.petVolume) {
      mip = null;
      return;
    }
    const values = await voxels(shown.petVolume);
    mip = computeMip(shown.petVolume, values, state.mipAngle);
    drawMip();
  }

  function mipClick(event) {
    if (!mip) {
      return;
    }
    const rect = event.currentTarget.getBoundingClientRect();
    const col = Math.floor(((event.clientX - rect.left) / rect.width) * mip.width);
    const row = Math.floor(((event.clientY - rect.top) / rect.height) * mip.height);
    const index = mip.hottest[row * mip.width + col];
    if (index === undefined || index < 0) {
      return;
    }
    const [, nr, nc] = mip.volume.shape;
    const ijk = [Math.floor(index / (nr * nc)), Math.floor(index / nc) % nr, index % nc];
    const A = mip.volume.affineLps;
    setCrosshairLps([0, 1, 2].map((r) => A[r][0] * ijk[0] + A[r][1] * ijk[1] + A[r][2] * ijk[2] + A[r][3]));
  }

  // -- timepoints and tracers ---------------------------------------------------------------------

  function tracerFor(timepoint, wanted) {
    const available = Object.keys(timepoint.pet);
    if (wanted && available.includes(wanted)) {
      return wanted;
    }
    if (state.tracer && available.includes(state.tracer)) {
      return state.tracer;
    }
    if (DATA.lesionTracer && available.includes(DATA.lesionTracer)) {
      return DATA.lesionTracer;
    }
    return available[0];
  }

  function fillTracers(timepoint) {
    const select = byId('viewer-tracer');
    for (const option of select.options) {
      option.disabled = !(option.value in timepoint.pet);
    }
    select.value = state.tracer;
  }

  function fillVois(timepoint) {
    const list = byId('viewer-voi-list');
    list.replaceChildren();
    if (timepoint.vois.length === 0) {
      const item = document.createElement('li');
      item.className = 'viewer-hint';
      item.textContent = 'No VOIs at this timepoint.';
      list.append(item);
    }
    for (const voi of timepoint.vois) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = `viewer-voi viewer-voi-${voi.kind}`;
      button.textContent = voi.text;
      button.dataset.voi = voi.name;
      button.disabled = voi.lps === null;
      button.setAttribute('aria-label', `${voi.kind === 'lesion' ? 'Lesion' : 'Organ'} ${voi.text}: move the crosshair there`);
      button.addEventListener('click', () => setCrosshairLps(voi.lps));
      item.append(button);
      list.append(item);
    }
  }

  let queue = Promise.resolve();

  /** Show a timepoint and tracer (both optional), then move to lps (optional). Serialised. */
  function show(options) {
    const job = queue.then(() => showNow(options || {}));
    queue = job.catch(() => undefined);
    return job;
  }

  async function showNow({ timepoint: timepointId, tracer: wantedTracer, lps }) {
    const timepoint = timepointById.get(timepointId || state.timepoint);
    if (!timepoint) {
      throw new Error(`unknown timepoint ${timepointId}`);
    }
    const tracer = tracerFor(timepoint, wantedTracer);
    const keep = lps || state.lps;
    if (shown.timepoint !== timepoint.id || shown.petVolume !== timepoint.pet[tracer]) {
      setStatus(`Loading ${timepoint.id}, ${DATA.tracers[tracer].label}…`);
      state.timepoint = timepoint.id;
      state.tracer = tracer;
      const petVolume = timepoint.pet[tracer];
      const images = [];
      const ct = timepoint.ct ? await image(timepoint.ct, 'gray', 1, ...ctRange()) : null;
      if (ct) {
        ct.colorbarVisible = false;
        images.push(ct);
      }
      const pet = await image(petVolume, DATA.pet.colormap, ct ? DATA.pet.opacity : 1, ...petRange());
      images.push(pet);
      let labels = null;
      if (timepoint.labels) {
        labels = await image(timepoint.labels, 'gray', state.outlines ? 1 : 0, 0, 1);
        labels.setColormapLabel(labelColormap(timepoint.vois));
        labels.colorbarVisible = false;
        images.push(labels);
      }
      // One GPU upload for the whole set (removeVolume/addVolume would upload once per call).
      nv.volumes = images;
      nv.setVolume(images[0], 0);
      Object.assign(shown, { ct, pet, labels, petVolume, timepoint: timepoint.id });
      byId('viewer-timepoint').value = timepoint.id;
      byId('viewer-suv-max').value = String(state.suvMax[tracer]);
      fillTracers(timepoint);
      fillVois(timepoint);
      await updateMip();
    }
    if (keep) {
      setCrosshairLps(keep);
    } else {
      const lesion = timepoint.vois.find((v) => v.kind === 'lesion' && v.lps);
      if (lesion) {
        setCrosshairLps(lesion.lps);
      } else {
        nv.drawScene();
        updateReadout();
      }
    }
    const day = timepoint.day === null ? '' : ` (day ${formatNumber(timepoint.day, 1)})`;
    setStatus(`Showing ${timepoint.id}${day}, ${DATA.tracers[tracer].label}.`);
  }

  // -- controls -----------------------------------------------------------------------------------

  function moveCrosshair(dxRas, dyRas, dzRas) {
    nv.moveCrosshairInVox(dxRas, dyRas, dzRas);
    updateReadout();
  }

  function imageKeys(event) {
    const right = nv.opts.isRadiologicalConvention ? 1 : -1;
    const moves = {
      ArrowLeft: [right, 0, 0],
      ArrowRight: [-right, 0, 0],
      ArrowUp: [0, 0, 1],
      ArrowDown: [0, 0, -1],
      PageUp: [0, 1, 0],
      PageDown: [0, -1, 0],
    };
    const move = moves[event.key];
    event.stopPropagation(); // NiiVue's own keys would move a second time or change the view
    if (move) {
      event.preventDefault();
      moveCrosshair(...move);
    }
  }

  function mipKeys(event) {
    const step = DATA.mip.rotation_step_deg;
    const turns = { ArrowLeft: -step, ArrowRight: step };
    if (event.key in turns) {
      event.preventDefault();
      state.mipAngle = (state.mipAngle + turns[event.key] + 360) % 360;
      updateMip();
    } else if (event.key === 'Home') {
      event.preventDefault();
      state.mipAngle = 0;
      updateMip();
    }
  }

  function bindControls() {
    byId('viewer-timepoint').addEventListener('change', (e) => show({ timepoint: e.target.value }));
    byId('viewer-tracer').addEventListener('change', (e) => show({ tracer: e.target.value }));
    byId('viewer-layout').addEventListener('change', (e) => {
      state.layout = e.target.value;
      applyLayout();
    });
    byId('viewer-ct-window').value = state.ctWindow;
    byId('viewer-ct-window').addEventListener('change', (e) => {
      state.ctWindow = e.target.value;
      applyWindows();
    });
    byId('viewer-suv-max').addEventListener('change', (e) => {
      const top = Number(e.target.value);
      if (Number.isFinite(top) && top > 0) {
        state.suvMax[state.tracer] = top;
      }
      applyWindows();
    });
    byId('viewer-outlines').addEventListener('change', (e) => {
      state.outlines = e.target.checked;
      applyWindows();
    });
    const mipButton = byId('viewer-mip');
    mipButton.addEventListener('click', () => {
      state.mip = !state.mip;
      mipButton.setAttribute('aria-pressed', String(state.mip));
      drawMip();
    });
    const stage = byId('viewer-canvas').parentElement;
    stage.addEventListener('keydown', imageKeys, { capture: true });
    stage.addEventListener('keyup', (e) => e.stopPropagation(), { capture: true });
    const mipCanvas = byId('viewer-mip-canvas');
    mipCanvas.addEventListener('click', mipClick);
    mipCanvas.addEventListener('keydown', mipKeys);
    // The report's "Show in the viewer" links: data-timepoint, data-tracer, data-lps="[x, y, z]".
    document.addEventListener('click', (event) => {
      const link = event.target.closest('a.show-in-viewer');
      if (!link || root.contains(link)) {
        return;
      }
      event.preventDefault();
      const lps = link.dataset.lps ? JSON.parse(link.dataset.lps) : undefined;
      root.scrollIntoView({ block: 'start' });
      show({ timepoint: link.dataset.timepoint, tracer: link.dataset.tracer, lps }).then(
        () => byId('viewer-canvas').focus({ preventScroll: true }),
        (error) => setStatus(`Could not show that position: ${error.message}`, true),
      );
    });
    window.addEventListener('resize', () => drawMip());
  }

  // -- start --------------------------------------------------------------------------------------

  function canvasPixels(stride) {
    const every = Math.max(1, Math.floor(stride || 4));
    nv.drawScene();
    const gl = nv.gl;
    const width = gl.drawingBufferWidth;
    const height = gl.drawingBufferHeight;
    const rgba = new Uint8Array(width * height * 4);
    gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
    const grey = [];
    for (let y = 0; y < height; y += every) {
      for (let x = 0; x < width; x += every) {
        const i = 4 * (y * width + x);
        grey.push(Math.round((rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3));
      }
    }
    return { width: Math.ceil(width / every), height: Math.ceil(height / every), grey };
  }

  async function start() {
    if (typeof niivue === 'undefined' || typeof DecompressionStream === 'undefined') {
      throw new Error('this browser lacks what the viewer needs (NiiVue bundle or DecompressionStream)');
    }
    const canvas = byId('viewer-canvas');
    if (!document.createElement('canvas').getContext('webgl2')) {
      throw new Error('this browser has no WebGL 2, which the viewer needs');
    }
    nv = new niivue.Niivue({
      backColor: [0, 0, 0, 1],
      crosshairColor: [0.1, 0.6, 1, 1],
      crosshairWidth: 1,
      crosshairWidthUnit: 'mm',
      crosshairGap: 6,
      show3Dcrosshair: true,
      isColorbar: true,
      dragAndDropEnabled: false,
      isRadiologicalConvention: true,
      multiplanarLayout: niivue.MULTIPLANAR_TYPE.ROW,
      multiplanarShowRender: niivue.SHOW_RENDER.NEVER,
      logLevel: 'error',
      loadingText: '',
    });
    await nv.attachToCanvas(canvas);
    nv.setAtlasOutline(1);
    nv.onLocationChange = () => updateReadout();
    applyLayout();
    bindControls();
    await show({ timepoint: state.timepoint });
  }

  window.immunopetViewer = {
    ready,
    timepoints: DATA.timepoints.map((t) => t.id),
    tracers: Object.keys(DATA.tracers),
    get timepoint() {
      return state.timepoint;
    },
    get tracer() {
      return state.tracer;
    },
    setTimepoint: (id) => show({ timepoint: id }),
    setTracer: (key) => show({ tracer: key }),
    show,
    setCrosshairLPS: (lps) => setCrosshairLps(lps),
    crosshairLPS: () => crosshairLps(),
    suvAtCrosshair,
    canvasPixels,
    get niivue() {
      return nv;
    },
  };

  start().then(
    () => resolveReady(window.immunopetViewer),
    (error) => {
      setStatus(`The interactive viewer could not start: ${error.message}. The static MIP images below show every scan.`, true);
      rejectReady(error);
    },
  );
})();
