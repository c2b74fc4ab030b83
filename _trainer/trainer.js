/*
 * The book's browser trainer: the chapter's MLP retrained on a FashionMNIST subset in the reader's browser with
 * TensorFlow.js, as the kernel panel (dldna.widgets.TrainerPanel, CPU budget) retrains it in Python.
 *
 * Everything about the experiment comes from trainer.json, which the build writes from the package
 * (dldna.browser): the controls (labels, ranges, defaults, and which argument of the optimizer's update each
 * slider sets), the network's widths, and where the data, the initial weights and the batch order of every
 * epoch lie in one binary file. The page loads only trainer.json; TensorFlow.js and the data are fetched when
 * the reader first touches the trainer. Moving a control cancels the run in progress and, once the controls
 * have rested for the panel's debounce delay, starts a run of the new setting; a run draws only while its
 * setting is the current one. The updates below are the equations of dldna.optim, with its order of
 * operations, written with TensorFlow.js operations.
 */
(function () {
  "use strict";

  const HERE = new URL(".", document.currentScript.src);
  const BACKENDS = ["auto", "webgpu", "webgl", "wasm", "cpu"];
  const REDRAW_MS = 150;
  const YIELD_MS = 25;

  // ---------------------------------------------------------------- the optimizers (dldna.optim, one tensor each)

  const add = (a, b) => tf.add(a, b);
  const sub = (a, b) => tf.sub(a, b);
  const mul = (a, b) => tf.mul(a, b);
  const div = (a, b) => tf.div(a, b);
  const sqrt = (a) => tf.sqrt(a);

  /** At a parameter's first step create `buffers` as zeros shaped like `param`; then count the step (t). */
  function countStep(state, param, ...buffers) {
    if (state.step === undefined) {
      state.step = 0;
      for (const name of buffers) state.tensors[name] = tf.variable(tf.zerosLike(param), false);
    }
    state.step += 1;
    return state.step;
  }

  function store(state, name, value) {
    state.tensors[name].assign(value);
    return value;
  }

  /** g + λ w: coupled weight decay (with_weight_decay). */
  function withWeightDecay(direction, param, weightDecay) {
    return add(direction, mul(weightDecay, param));
  }

  /** w (1 - lr λ): decoupled weight decay (decay_weights_). */
  function decayWeights(param, lr, weightDecay) {
    return mul(param, 1 - lr * weightDecay);
  }

  /** m ← β m + (1 - β) g, the running average of Adam's first moment and of Lion's momentum. */
  function average(previous, beta, value) {
    return add(mul(previous, beta), mul(1 - beta, value));
  }

  /** v ← β v + (1 - β) g², the running average of the squared gradient. */
  function squareAverage(previous, beta, grad) {
    return add(mul(previous, beta), mul(mul(1 - beta, grad), grad));
  }

  function adamStep(param, grad, state, hp, weightDecay) {
    const t = countStep(state, param, "exp_avg", "exp_avg_sq", ...(hp.amsgrad ? ["max_exp_avg_sq"] : []));
    grad = withWeightDecay(grad, param, weightDecay);
    const m = store(state, "exp_avg", average(state.tensors.exp_avg, hp.beta1, grad));
    let v = store(state, "exp_avg_sq", squareAverage(state.tensors.exp_avg_sq, hp.beta2, grad));
    if (hp.amsgrad) v = store(state, "max_exp_avg_sq", tf.maximum(state.tensors.max_exp_avg_sq, v));
    const mHat = div(m, 1 - Math.pow(hp.beta1, t));
    const vHat = div(v, 1 - Math.pow(hp.beta2, t));
    return sub(param, div(mul(hp.lr, mHat), add(sqrt(vHat), hp.eps)));
  }

  /** Each rule returns the parameter after one step; `hp` holds the update function's keyword arguments. */
  const RULES = {
    SGD(param, grad, state, hp) {
      grad = withWeightDecay(grad, param, hp.weight_decay);
      if (hp.momentum === 0) return sub(param, mul(hp.lr, grad));
      let buffer;
      if (state.step === undefined) {
        countStep(state, param, "momentum_buffer");
        buffer = store(state, "momentum_buffer", grad);
      } else {
        buffer = store(state, "momentum_buffer", add(mul(state.tensors.momentum_buffer, hp.momentum), mul(1 - hp.dampening, grad)));
      }
      const direction = hp.nesterov ? add(grad, mul(hp.momentum, buffer)) : buffer;
      return sub(param, mul(hp.lr, direction));
    },
    Adagrad(param, grad, state, hp) {
      const first = state.step === undefined;
      const t = countStep(state, param, "sum");
      if (first) store(state, "sum", add(state.tensors.sum, hp.initial_accumulator_value));
      grad = withWeightDecay(grad, param, hp.weight_decay);
      const stepLr = hp.lr / (1 + (t - 1) * hp.lr_decay);
      const total = store(state, "sum", add(state.tensors.sum, mul(grad, grad)));
      return sub(param, div(mul(stepLr, grad), add(sqrt(total), hp.eps)));
    },
    RMSprop(param, grad, state, hp) {
      const withMomentum = hp.momentum !== 0;
      countStep(state, param, "square_avg", ...(withMomentum ? ["momentum_buffer"] : []), ...(hp.centered ? ["grad_avg"] : []));
      grad = withWeightDecay(grad, param, hp.weight_decay);
      const squareAvg = store(state, "square_avg", squareAverage(state.tensors.square_avg, hp.alpha, grad));
      let rms;
      if (hp.centered) {
        const gradAvg = store(state, "grad_avg", average(state.tensors.grad_avg, hp.alpha, grad));
        rms = add(sqrt(sub(squareAvg, mul(gradAvg, gradAvg))), hp.eps);
      } else {
        rms = add(sqrt(squareAvg), hp.eps);
      }
      if (withMomentum) {
        const buffer = store(state, "momentum_buffer", add(mul(state.tensors.momentum_buffer, hp.momentum), div(grad, rms)));
        return sub(param, mul(hp.lr, buffer));
      }
      return sub(param, div(mul(hp.lr, grad), rms));
    },
    Adam(param, grad, state, hp) {
      return adamStep(param, grad, state, hp, hp.weight_decay);
    },
    AdamW(param, grad, state, hp) {
      return adamStep(decayWeights(param, hp.lr, hp.weight_decay), grad, state, hp, 0);
    },
    NAdam(param, grad, state, hp) {
      const t = countStep(state, param, "exp_avg", "exp_avg_sq");
      if (t === 1) state.mu_product = 1.0;
      if (hp.decoupled_weight_decay) param = decayWeights(param, hp.lr, hp.weight_decay);
      else grad = withWeightDecay(grad, param, hp.weight_decay);
      const mu = hp.beta1 * (1 - 0.5 * Math.pow(0.96, t * hp.momentum_decay));
      const muNext = hp.beta1 * (1 - 0.5 * Math.pow(0.96, (t + 1) * hp.momentum_decay));
      const muProduct = (state.mu_product = state.mu_product * mu);
      const m = store(state, "exp_avg", average(state.tensors.exp_avg, hp.beta1, grad));
      const v = store(state, "exp_avg_sq", squareAverage(state.tensors.exp_avg_sq, hp.beta2, grad));
      const denom = add(sqrt(div(v, 1 - Math.pow(hp.beta2, t))), hp.eps);
      const gradShare = (hp.lr * (1 - mu)) / (1 - muProduct);
      const momentumShare = (hp.lr * muNext) / (1 - muProduct * muNext);
      return sub(param, add(div(mul(gradShare, grad), denom), div(mul(momentumShare, m), denom)));
    },
    Lion(param, grad, state, hp) {
      countStep(state, param, "exp_avg");
      const m = state.tensors.exp_avg;
      const direction = tf.sign(average(m, hp.beta1, grad));
      const updated = sub(param, mul(hp.lr, withWeightDecay(direction, param, hp.weight_decay)));
      store(state, "exp_avg", average(m, hp.beta2, grad));
      return updated;
    },
  };

  // ---------------------------------------------------------------- loading

  const loaded = {};

  /** Run the scripts at `urls` in order (fetched in parallel), once per page; AMD loaders are kept out of the way. */
  function loadScripts(urls) {
    const fresh = urls.filter((url) => !loaded[url]);
    const amd = typeof window.define === "function" && window.define.amd ? window.define : null;
    if (amd) window.define = undefined;
    for (const url of fresh) {
      loaded[url] = new Promise((resolve, reject) => {
        const element = document.createElement("script");
        element.src = url;
        element.async = false;
        element.onload = resolve;
        element.onerror = () => reject(new Error(`could not load ${url}`));
        document.head.appendChild(element);
      });
    }
    const all = Promise.all(urls.map((url) => loaded[url]));
    return amd ? all.finally(() => { window.define = amd; }) : all;
  }

  async function gunzipped(buffer) {
    const bytes = new Uint8Array(buffer, 0, 2);
    if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return buffer; // the server already decompressed it
    const stream = new Blob([buffer]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer();
  }

  const TYPED = { float32: Float32Array, uint16: Uint16Array, uint32: Uint32Array, uint8: Uint8Array };

  /** The arrays of the binary file, by name, as typed arrays (copied, so that any offset works). */
  async function loadArrays(spec) {
    const response = await fetch(new URL(spec.file, HERE));
    if (!response.ok) throw new Error(`could not load ${spec.file} (HTTP ${response.status})`);
    const buffer = await gunzipped(await response.arrayBuffer());
    const arrays = {};
    for (const [name, entry] of Object.entries(spec.arrays)) {
      const Type = TYPED[entry.dtype];
      const count = entry.shape.reduce((a, b) => a * b, 1);
      arrays[name] = { values: new Type(buffer.slice(entry.offset, entry.offset + count * Type.BYTES_PER_ELEMENT)), shape: entry.shape };
    }
    return arrays;
  }

  const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software|basic render/i;

  /** Whether WebGL works here; `hardware`: only when a GPU draws it, not a software renderer such as SwiftShader
   * (which Chromium offers without a GPU, slower than the CPU backend). */
  function webglAvailable(hardware) {
    const canvas = document.createElement("canvas");
    const options = { failIfMajorPerformanceCaveat: hardware };
    const context = canvas.getContext("webgl2", options) || canvas.getContext("webgl", options);
    if (!context) return false;
    let renderer = String(context.getParameter(context.RENDERER));
    const info = renderer === "WebKit WebGL" ? context.getExtension("WEBGL_debug_renderer_info") : null;
    if (info) renderer = String(context.getParameter(info.UNMASKED_RENDERER_WEBGL));
    const lose = context.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
    return !(hardware && SOFTWARE_RENDERER.test(renderer));
  }

  async function webgpuAvailable(hardware) {
    if (!navigator.gpu) return false;
    const adapter = await navigator.gpu.requestAdapter().catch(() => null);
    return adapter !== null && !(hardware && (adapter.isFallbackAdapter || (adapter.info && adapter.info.isFallbackAdapter)));
  }

  async function available(name, hardware) {
    if (name === "cpu") return true;
    if (name === "wasm") return typeof WebAssembly === "object";
    return name === "webgl" ? webglAvailable(hardware) : webgpuAvailable(hardware);
  }

  let wasmPathsSet = false;

  /** Switch TensorFlow.js to `choice`, loading its backend first; "auto" takes the first of WebGPU and WebGL that
   * runs on a GPU (a software renderer is slower than the CPU), else WebAssembly, else plain JavaScript. */
  async function useBackend(spec, choice) {
    const library = spec.library;
    for (const name of choice === "auto" ? BACKENDS.slice(1) : [choice, "cpu"]) {
      if (!(await available(name, choice === "auto"))) continue;
      if (library.backends[name]) await loadScripts([new URL(library.backends[name], HERE).href]);
      if (name === "wasm" && !wasmPathsSet) {
        tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false); // threads need a cross-origin isolated page
        tf.wasm.setWasmPaths(new URL(library.wasm_folder, HERE).href);
        wasmPathsSet = true;
      }
      if (tf.getBackend() === name || (await tf.setBackend(name))) {
        await tf.ready();
        return name;
      }
    }
    throw new Error("no TensorFlow.js backend could start");
  }

  // ---------------------------------------------------------------- the network

  /** The data as tensors on the current backend: pixels normalised as dldna.data does, labels as int32. */
  function dataTensors(spec, arrays) {
    const pixels = spec.model.widths[0];
    const normalised = (name) => {
      const images = arrays[name];
      return tf.tidy(() => div(sub(div(tf.tensor2d(images.values, [images.shape[0], pixels], "float32"), 255), spec.data.mean), spec.data.std));
    };
    const labels = (name) => tf.tensor1d(Int32Array.from(arrays[name].values), "int32");
    return { xTrain: normalised("x_train"), yTrain: labels("y_train"), xTest: normalised("x_test"), yTest: labels("y_test") };
  }

  function forward(layers, x) {
    let h = x;
    layers.forEach(([weight, bias], i) => {
      h = add(tf.matMul(h, weight, false, true), bias);
      if (i < layers.length - 1) h = tf.relu(h);
    });
    return h;
  }

  /** Mean cross-entropy of `logits` against integer `labels` (F.cross_entropy). */
  function crossEntropy(logits, labels) {
    const onehot = tf.cast(tf.oneHot(labels, logits.shape[1]), "float32");
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), 1)));
  }

  // ---------------------------------------------------------------- formatting

  function format(value, pattern) {
    const match = /^\.(\d+)([ef])$/.exec(pattern || "");
    if (!match) return String(value);
    const digits = Number(match[1]);
    return match[2] === "e" ? value.toExponential(digits) : value.toFixed(digits);
  }

  /** `text`'s comma-separated parts on lines of at most about `width` characters, joined by <br> (plotly titles). */
  function wrap(text, width) {
    const lines = [];
    for (const part of text.split(", ")) {
      const last = lines.length - 1;
      if (last >= 0 && lines[last].length + part.length + 2 <= width) lines[last] += `, ${part}`;
      else lines.push(part);
    }
    return lines.join(",<br>");
  }

  function megabytes(bytes) {
    return `${(bytes / 1e6).toFixed(1)} MB`;
  }

  function element(tag, properties = {}, children = []) {
    const node = document.createElement(tag);
    Object.assign(node, properties);
    for (const child of children) node.append(child);
    return node;
  }

  const yieldToPage = () => new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });

  // ---------------------------------------------------------------- the trainer

  class Trainer {
    constructor(root, spec) {
      this.root = root;
      this.spec = spec;
      this.controls = spec.controls;
      this.generation = 0;
      this.timer = null;
      this.previous = Promise.resolve();
      this.loading = null;
      this.tensors = null;
      this.values = {};
      this.flags = {};
      this.build();
      this.useOptimizer(this.controls.optimizer.value);
      this.setState("idle", this.invitation());
    }

    build() {
      const c = this.controls;
      this.root.textContent = "";
      this.inputs = {};
      this.outputs = {};
      this.labels = {};
      const row = (name, label, input, output) => {
        this.inputs[name] = input;
        this.labels[name] = element("span", { className: "dldna-trainer-name", textContent: label });
        const children = [this.labels[name], input];
        if (output) {
          this.outputs[name] = output;
          children.push(output);
        }
        return element("label", { className: "dldna-trainer-control" }, children);
      };
      const optimizer = element("select", { name: "optimizer" }, c.optimizer.options.map((name) => element("option", { value: name, textContent: name })));
      optimizer.value = c.optimizer.value;
      optimizer.addEventListener("change", () => {
        this.useOptimizer(optimizer.value);
        this.schedule();
      });
      const backend = element("select", { name: "backend" }, BACKENDS.map((name) => element("option", { value: name, textContent: name })));
      backend.addEventListener("change", () => this.schedule());
      const batch = element("input", { type: "range", name: "batch_size", min: 0, max: c.batch_size.options.length - 1, step: 1 });
      batch.value = c.batch_size.options.indexOf(c.batch_size.value);
      const epochs = element("input", { type: "range", name: "epochs", min: c.epochs.min, max: c.epochs.max, step: 1, value: c.epochs.value });
      epochs.value = c.epochs.value;
      const grid = element("div", { className: "dldna-trainer-controls" }, [
        row("optimizer", c.optimizer.label, optimizer),
        row("backend", "backend", backend),
        row("batch_size", c.batch_size.label, batch, element("output")),
        row("epochs", c.epochs.label, epochs, element("output")),
      ]);
      for (const input of [batch, epochs]) {
        input.addEventListener("input", () => {
          this.showReadouts();
          this.schedule();
        });
      }
      for (const [name, range] of Object.entries(c.sliders)) {
        const slider = element("input", { type: "range", name, min: range.min, max: range.max, step: range.step });
        slider.addEventListener("input", () => {
          this.values[name] = range.log_base ? Math.pow(range.log_base, Number(slider.value)) : Number(slider.value);
          this.showReadouts();
          this.schedule();
        });
        grid.append(row(name, range.label, slider, element("output")));
      }
      this.flagNames = [...new Set(Object.values(c.optimizers).flatMap((optimizer) => Object.keys(optimizer.flags)))];
      for (const name of this.flagNames) {
        const box = element("input", { type: "checkbox", name });
        box.addEventListener("change", () => {
          this.flags[name] = box.checked;
          this.schedule();
        });
        this.inputs[name] = box;
        this.labels[name] = element("label", { className: "dldna-trainer-flag" }, [box, ` ${name}`]);
        grid.append(this.labels[name]);
      }
      const train = element("button", { type: "button", name: "train", className: "dldna-trainer-train", textContent: "Train" });
      train.addEventListener("click", () => this.schedule(0));
      grid.append(train);
      this.plot = element("div", { className: "dldna-trainer-plot" });
      this.status = element("p", { className: "dldna-trainer-status" });
      this.status.setAttribute("role", "status");
      this.status.setAttribute("aria-live", "polite");
      this.note = element("p", { className: "dldna-trainer-note", textContent: this.describeExperiment() });
      this.root.append(grid, this.plot, this.status, this.note);
      for (const event of ["pointerdown", "keydown", "input", "change"]) this.root.addEventListener(event, () => this.touch(), { capture: true });
    }

    /** Show `name`'s defaults on the sliders and enable only the sliders and options it has (controls.use). */
    useOptimizer(name) {
      const optimizer = this.controls.optimizers[name];
      this.optimizer = name;
      for (const [slider, range] of Object.entries(this.controls.sliders)) {
        const setting = optimizer.sliders[slider];
        const input = this.inputs[slider];
        input.disabled = !setting;
        this.labels[slider].textContent = setting ? setting.label : range.label;
        if (setting) {
          this.values[slider] = setting.value;
          input.value = range.log_base ? Math.log(setting.value) / Math.log(range.log_base) : setting.value;
        }
      }
      for (const name of this.flagNames) {
        const has = name in optimizer.flags;
        this.flags[name] = has && optimizer.flags[name];
        this.inputs[name].checked = this.flags[name];
        this.inputs[name].disabled = !has;
        this.labels[name].hidden = !has;
      }
      this.showReadouts();
    }

    showReadouts() {
      const c = this.controls;
      this.outputs.batch_size.value = this.batchSize();
      this.outputs.epochs.value = this.inputs.epochs.value;
      for (const [name, range] of Object.entries(c.sliders)) {
        const off = name === "weight_decay" && this.values[name] <= c.weight_decay_off;
        this.outputs[name].value = this.inputs[name].disabled ? "–" : off ? "off" : format(this.values[name], range.format);
      }
    }

    batchSize() {
      return this.controls.batch_size.options[Number(this.inputs.batch_size.value)];
    }

    /** What a run trains with, read from the controls when it starts. */
    settings() {
      const optimizer = this.controls.optimizers[this.optimizer];
      const hp = { ...optimizer.fixed };
      const shown = [];
      for (const [slider, setting] of Object.entries(optimizer.sliders)) {
        let value = this.values[slider];
        if (slider === "weight_decay" && value <= this.controls.weight_decay_off) value = 0;
        hp[setting.argument] = value;
        shown.push(`${setting.label} ${value === 0 && slider === "weight_decay" ? "off" : format(value, this.controls.sliders[slider].format)}`);
      }
      for (const name of Object.keys(optimizer.flags)) {
        hp[name] = this.flags[name];
        if (this.flags[name]) shown.push(name);
      }
      const batchSize = this.batchSize();
      return {
        optimizer: this.optimizer,
        hp,
        batchSize,
        epochs: Number(this.inputs.epochs.value),
        backend: this.inputs.backend.value,
        label: `${this.optimizer}: ${shown.join(", ")}, batch ${batchSize}`,
      };
    }

    describeExperiment() {
      const s = this.spec;
      return `Each run trains an MLP ${s.model.widths.join("-")} (${s.model.parameters.toLocaleString("en")} parameters) on ` +
        `${s.data.train.toLocaleString("en")} ${s.data.name} training images and tests it on ${s.data.test.toLocaleString("en")}, ` +
        `in this browser with TensorFlow.js, from the same initial weights and with the same batches as the ` +
        `kernel panel's run of dldna.train.fit (seed ${s.seed}).`;
    }

    invitation() {
      const library = this.spec.library;
      const backend = Math.max(...Object.values(library.bytes.backends));
      return `Move a control or press Train to retrain the network here. The first run loads TensorFlow.js ` +
        `(${megabytes(library.bytes.core)}, and up to ${megabytes(backend)} more for the backend it picks) ` +
        `and the data (${megabytes(this.spec.data_bytes)}).`;
    }

    setState(state, text) {
      this.root.dataset.state = state;
      this.status.textContent = text;
    }

    /** The first touch starts loading TensorFlow.js and the data; later touches find them loading or loaded. */
    touch() {
      if (this.loading) return;
      const library = this.spec.library;
      this.loading = Promise.all([loadScripts([new URL(library.core, HERE).href]), loadArrays(this.spec)])
        .then(([, arrays]) => arrays);
      this.loading.catch(() => { this.loading = null; }); // the next touch tries again
    }

    /** Cancel the run in progress and start one for the current setting once the controls rest. */
    schedule(delay = this.spec.debounce_s * 1000) {
      this.touch();
      this.generation += 1;
      const generation = this.generation;
      clearTimeout(this.timer);
      this.setState("waiting", "setting changed: waiting for the controls to rest…");
      this.timer = setTimeout(() => this.start(generation), delay);
    }

    async start(generation) {
      await this.previous;
      if (generation !== this.generation) return;
      const settings = this.settings();
      this.previous = this.train(generation, settings).catch((error) => {
        if (generation === this.generation) this.setState("error", `could not train ${settings.label}: ${error.message}`);
      });
    }

    current(generation) {
      return generation === this.generation;
    }

    async train(generation, settings) {
      if (settings.optimizer === "SGD" && settings.hp.nesterov && !(settings.hp.momentum > 0)) {
        throw new Error("nesterov needs momentum > 0");
      }
      this.setState("loading", `loading TensorFlow.js and the data (${megabytes(this.spec.data_bytes)})…`);
      const arrays = await this.loading;
      if (!this.current(generation)) return;
      const backend = await useBackend(this.spec, settings.backend);
      if (!this.current(generation)) return;
      if (!this.tensors || this.tensors.backend !== backend) {
        if (this.tensors) Object.values(this.tensors.data).forEach((tensor) => tensor.dispose());
        this.tensors = { backend, data: dataTensors(this.spec, arrays) };
      }
      const engine = `TensorFlow.js ${tf.version_core} on ${backend}` +
        (settings.backend !== "auto" && settings.backend !== backend ? ` (${settings.backend} is not available here)` : "");
      const run = new Run(this.spec, arrays, this.tensors.data, settings);
      const record = { settings, engine, losses: [], accuracy: [], epochSeconds: [], diverged: null };
      this.setState("training", `training ${settings.label} with ${engine}…`);
      let lastDraw = 0;
      let lastYield = performance.now();
      try {
        for (let epoch = 0; epoch < settings.epochs; epoch += 1) {
          const started = performance.now();
          for (const batch of run.batches(epoch)) {
            const loss = await run.step(batch);
            if (!this.current(generation)) return;
            record.losses.push(loss);
            record.diverged = this.divergence(record.losses);
            if (record.diverged) break;
            const now = performance.now();
            if (now - lastDraw > REDRAW_MS) {
              this.draw(generation, record);
              lastDraw = now;
            }
            if (now - lastYield > YIELD_MS) {
              await yieldToPage();
              if (!this.current(generation)) return;
              lastYield = performance.now();
            }
          }
          if (record.diverged) break;
          record.epochSeconds.push((performance.now() - started) / 1000);
          record.accuracy.push(await run.testAccuracy());
          if (!this.current(generation)) return;
          this.draw(generation, record);
          this.setState("training", this.statusLine(record, false));
          lastDraw = performance.now();
        }
      } finally {
        run.dispose();
      }
      this.draw(generation, record);
      this.setState(record.diverged ? "diverged" : "done", this.statusLine(record, true));
    }

    /** Why the run counts as diverged, or null: a non-finite loss (as fit), or a mean over the last steps far
     * above the first step's loss (dldna.browser.DIVERGENCE_FACTOR and DIVERGENCE_WINDOW). */
    divergence(losses) {
      const { factor, window: recent } = this.spec.divergence;
      const step = losses.length;
      if (!Number.isFinite(losses[step - 1])) return `diverged at step ${step} (the loss became non-finite)`;
      if (step < recent) return null;
      const mean = losses.slice(step - recent).reduce((a, b) => a + b, 0) / recent;
      if (mean > factor * losses[0]) {
        return `diverged at step ${step} (over the last ${recent} steps the loss averaged more than ${factor} times its first value)`;
      }
      return null;
    }

    statusLine(record, final) {
      const s = record.settings;
      const done = record.accuracy.length;
      const parts = [];
      if (record.diverged) parts.push(record.diverged);
      else parts.push(`${final ? "done" : "training"}: epoch ${done}/${s.epochs}`);
      parts.push(record.engine);
      if (record.epochSeconds.length) parts.push(`${record.epochSeconds[record.epochSeconds.length - 1].toFixed(2)} s per epoch`);
      if (done) parts.push(`test accuracy ${(100 * record.accuracy[done - 1]).toFixed(1)}%`);
      return parts.join(" · ");
    }

    /** Redraw the figure for `record`, only while its setting is the current one. */
    draw(generation, record) {
      if (!this.current(generation)) return;
      const finite = record.losses.map((loss, i) => [i + 1, loss]).filter(([, loss]) => Number.isFinite(loss));
      const traces = [
        { x: finite.map(([step]) => step), y: finite.map(([, loss]) => loss), mode: "lines", name: "training loss", line: { width: 1.5 } },
        { x: record.accuracy.map((_, i) => i + 1), y: record.accuracy.map((a) => 100 * a), mode: "lines+markers", name: "test accuracy", xaxis: "x2", yaxis: "y2" },
      ];
      // Side by side on a wide page; on a phone, one above the other, with the title broken into lines.
      const width = this.plot.clientWidth || this.root.clientWidth;
      const narrow = width < 560;
      const title = wrap(record.settings.label, Math.max(30, Math.floor(width / 7.5)));
      const lines = title.split("<br>").length;
      const [loss, accuracy] = narrow
        ? [{ x: [0, 1], y: [0.6, 1] }, { x: [0, 1], y: [0, 0.36] }]
        : [{ x: [0, 0.46], y: [0, 1] }, { x: [0.6, 1], y: [0, 1] }];
      const heading = (text, panel) => ({
        text, x: (panel.x[0] + panel.x[1]) / 2, y: panel.y[1], xref: "paper", yref: "paper",
        xanchor: "center", yanchor: "bottom", yshift: 4, showarrow: false,
      });
      const layout = {
        title: { text: title, font: { size: 13 } },
        showlegend: false,
        height: (narrow ? 560 : 320) + 18 * lines,
        margin: { l: 55, r: 10, t: 50 + 18 * lines, b: 45 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { color: getComputedStyle(this.root).color },
        xaxis: { domain: loss.x, title: { text: "optimizer step" } },
        yaxis: { domain: loss.y, type: "log", title: { text: "cross-entropy" } },
        xaxis2: { domain: accuracy.x, anchor: "y2", title: { text: "epoch" }, range: [0.5, record.settings.epochs + 0.5], dtick: 1 },
        yaxis2: { domain: accuracy.y, anchor: "x2", range: [0, 100], title: { text: "test accuracy (%)" } },
        annotations: [heading("Training loss", loss), heading("Test accuracy", accuracy)],
      };
      Plotly.react(this.plot, traces, layout, { responsive: true, displayModeBar: false });
    }
  }

  /** One training run: the network from the exported initial weights, the optimizer's state, the batch order. */
  class Run {
    constructor(spec, arrays, data, settings) {
      this.data = data;
      this.settings = settings;
      this.rule = RULES[settings.optimizer];
      this.samples = spec.data.train;
      this.orders = arrays.order.values;
      const variable = (name) => tf.tidy(() => tf.variable(tf.tensor(arrays[name].values, arrays[name].shape, "float32"), true));
      this.layers = spec.model.layers.map(({ weight, bias }) => [variable(weight), variable(bias)]);
      this.params = this.layers.flat();
      this.states = this.params.map(() => ({ tensors: {} }));
    }

    /** The batches of epoch `epoch`: consecutive slices of its order, as fit takes them. */
    *batches(epoch) {
      const order = this.orders.subarray(epoch * this.samples, (epoch + 1) * this.samples);
      for (let start = 0; start < this.samples; start += this.settings.batchSize) {
        yield Int32Array.from(order.subarray(start, start + this.settings.batchSize));
      }
    }

    /** One optimizer step on the batch; its loss (before the step). */
    async step(batch) {
      const loss = tf.tidy(() => {
        const index = tf.tensor1d(batch, "int32");
        const x = tf.gather(this.data.xTrain, index);
        const y = tf.gather(this.data.yTrain, index);
        const { value, grads } = tf.variableGrads(() => crossEntropy(forward(this.layers, x), y), this.params);
        this.params.forEach((param, i) => param.assign(this.rule(param, grads[param.name], this.states[i], this.settings.hp)));
        return value;
      });
      const value = (await loss.data())[0];
      loss.dispose();
      return value;
    }

    async testAccuracy() {
      const correct = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(forward(this.layers, this.data.xTest), 1), this.data.yTest), "float32")));
      const value = (await correct.data())[0];
      correct.dispose();
      return value;
    }

    dispose() {
      for (const param of this.params) param.dispose();
      for (const state of this.states) Object.values(state.tensors).forEach((tensor) => tensor.dispose());
    }
  }

  async function setUp(root) {
    const response = await fetch(new URL("trainer.json", HERE));
    if (!response.ok) throw new Error(`could not load trainer.json (HTTP ${response.status})`);
    new Trainer(root, await response.json());
  }

  function setUpAll() {
    for (const root of document.querySelectorAll(".dldna-trainer")) {
      setUp(root).catch((error) => {
        root.dataset.state = "error";
        root.textContent = `The browser trainer could not start: ${error.message}`;
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUpAll);
  else setUpAll();
})();
