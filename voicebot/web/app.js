// voicebot demo page: one WebRTC call to the server, its events on the "events" data channel.
// Plain browser JavaScript, no build step. Works in current Chromium and Firefox.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), statusText: $("status-text"), orb: $("orb"),
    connect: $("connect"), mute: $("mute"), talk: $("talk"), ptt: $("ptt"), phone: $("phone"),
    alert: $("alert"), messages: $("messages"), clear: $("clear"), micLevel: $("mic-level"),
    outLevel: $("out-level"), latLast: $("latency-last"), latAvg: $("latency-avg"), codec: $("codec"),
    latencies: $("latencies"), tools: $("tools"), callId: $("call-id"), remote: $("remote"),
  };

  const STATUS_TEXT = {
    idle: "Ready", connecting: "Connecting…", listening: "Listening", thinking: "Thinking…",
    speaking: "Speaking", ended: "Call ended", error: "Problem",
  };

  // Everything about the current call; reset by teardown().
  let call = null;
  // Exposed for tests and curious developers: the peer connection and live audio levels.
  const debug = { pc: null, callId: null, maxOutputRms: 0, outputRms: 0, micRms: 0, events: [] };
  window.voicebot = debug;

  // status and alerts --------------------------------------------------------------------------------------
  function setStatus(state) {
    ui.status.dataset.state = state;
    ui.statusText.textContent = STATUS_TEXT[state] || state;
    ui.orb.dataset.state = state;
  }

  function showAlert(title, detail, kind = "error") {
    ui.alert.hidden = false;
    ui.alert.className = kind === "info" ? "alert info" : "alert";
    ui.alert.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = title;
    ui.alert.append(strong);
    if (detail) ui.alert.append(document.createTextNode(detail));
  }

  function hideAlert() { ui.alert.hidden = true; }

  class CallError extends Error {
    constructor(title, detail) { super(title); this.title = title; this.detail = detail; }
  }

  // connecting ---------------------------------------------------------------------------------------------
  async function getMicrophone() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new CallError("The microphone needs a secure page.",
        "Open this page over https:// (or on localhost) to talk to the agent.");
    }
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      const name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError") {
        throw new CallError("Microphone access was denied.",
          "Allow the microphone for this site (the icon in the address bar), then start the call again.");
      }
      if (name === "NotFoundError" || name === "OverconstrainedError") {
        throw new CallError("No microphone was found.", "Connect a microphone and try again.");
      }
      if (name === "NotReadableError" || name === "AbortError") {
        throw new CallError("The microphone is busy.", "Another application is using it. Close it and try again.");
      }
      throw new CallError("The microphone could not be opened.", String(err && err.message || err));
    }
  }

  async function fetchJson(url, options) {
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      throw new CallError("The voicebot server cannot be reached.", "Check that it is running and try again.");
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    return { response, body };
  }

  function httpError(status, body) {
    const message = body && body.error && body.error.message ? body.error.message : "";
    if (status === 503) return new CallError("All lines are busy.", message || "The server is full. Please try again in a minute.");
    if (status === 502) return new CallError("The voice model is unavailable right now.", message || "Please try again shortly.");
    if (status === 400) return new CallError("The server refused this browser's call.", message);
    return new CallError(`The server answered ${status}.`, message);
  }

  function iceGatheringDone(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); clearTimeout(timer); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, timeoutMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  async function start() {
    hideAlert();
    setStatus("connecting");
    ui.connect.disabled = true;
    ui.phone.disabled = true;
    const current = { pc: null, mic: null, audioCtx: null, raf: 0, callId: null, ended: false, muted: false, talking: false };
    call = current;
    try {
      const { response: cfgResponse, body: cfg } = await fetchJson("/api/config");
      if (!cfgResponse.ok) throw httpError(cfgResponse.status, cfg);
      current.mic = await getMicrophone();
      if (call !== current) return;  // hung up while the permission prompt was open
      const pc = new RTCPeerConnection({ iceServers: cfg.ice_servers || [] });
      current.pc = pc;
      debug.pc = pc;
      current.mic.getAudioTracks().forEach((t) => pc.addTrack(t, current.mic));
      const channel = pc.createDataChannel("events");
      channel.onmessage = (e) => { try { onEvent(JSON.parse(e.data)); } catch (err) { console.warn(err); } };
      pc.ontrack = (e) => onRemoteTrack(current, e);
      pc.onconnectionstatechange = () => onConnectionState(current);
      startMeters(current);
      applyMicState();
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringDone(pc, 2500);  // the server takes one complete offer (no trickle ICE)
      if (call !== current) return;
      const { response, body } = await fetchJson("/api/calls", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", phone_quality: ui.phone.checked }),
      });
      if (response.status !== 201) throw httpError(response.status, body);
      current.callId = body.call_id;
      debug.callId = body.call_id;
      ui.callId.textContent = `call ${body.call_id}`;
      await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
      ui.connect.textContent = "Hang up";
      ui.connect.classList.add("hangup");
      ui.connect.disabled = false;
      ui.mute.disabled = false;
    } catch (err) {
      if (call === current) {
        teardown(false);
        setStatus("error");
        if (err instanceof CallError) showAlert(err.title, " " + (err.detail || ""));
        else showAlert("The call could not start.", " " + String(err && err.message || err));
      }
    }
  }

  function onRemoteTrack(current, e) {
    const stream = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
    ui.remote.srcObject = stream;  // a media element must play it, or WebAudio hears silence
    ui.remote.play().catch(() => showAlert("Audio playback is blocked.", " Click anywhere on the page to hear the agent.", "info"));
    if (current.audioCtx) {
      const analyser = current.audioCtx.createAnalyser();
      analyser.fftSize = 1024;
      current.audioCtx.createMediaStreamSource(stream).connect(analyser);
      current.outAnalyser = analyser;
    }
  }

  function onConnectionState(current) {
    const state = current.pc && current.pc.connectionState;
    if (call !== current) return;
    if (state === "connected") {
      if (ui.status.dataset.state === "connecting") setStatus("listening");
    } else if (state === "failed") {
      teardown(false);
      setStatus("error");
      showAlert("The connection to the server was lost.",
        " The network may block WebRTC audio; a TURN server fixes that (see docs/webrtc.md).");
    } else if (state === "closed" && !current.ended) {
      teardown(false);
      setStatus("ended");
    }
  }

  async function hangUp() {
    const current = call;
    if (!current) return;
    teardown(true);
    setStatus("ended");
    addSystem("You hung up.");
  }

  function teardown(notifyServer) {
    const current = call;
    call = null;
    if (!current) return;
    current.ended = true;
    if (notifyServer && current.callId) {
      fetch(`/api/calls/${encodeURIComponent(current.callId)}`, { method: "DELETE", keepalive: true }).catch(() => {});
    }
    cancelAnimationFrame(current.raf);
    if (current.pc) current.pc.close();
    if (current.mic) current.mic.getTracks().forEach((t) => t.stop());
    if (current.audioCtx) current.audioCtx.close().catch(() => {});
    ui.remote.srcObject = null;
    ui.micLevel.style.width = "0%";
    ui.outLevel.style.width = "0%";
    ui.orb.style.setProperty("--level", 0);
    ui.connect.textContent = "Start call";
    ui.connect.classList.remove("hangup");
    ui.connect.disabled = false;
    ui.mute.disabled = true;
    ui.mute.setAttribute("aria-pressed", "false");
    ui.mute.textContent = "Mute";
    ui.phone.disabled = false;
  }

  // levels ------------------------------------------------------------------------------------------------
  function rms(analyser, buf) {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    return Math.sqrt(sum / buf.length);
  }

  function startMeters(current) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    const ctx = new Ctx();
    current.audioCtx = ctx;
    ctx.resume().catch(() => {});
    const micAnalyser = ctx.createAnalyser();
    micAnalyser.fftSize = 1024;
    ctx.createMediaStreamSource(current.mic).connect(micAnalyser);
    const buf = new Float32Array(micAnalyser.fftSize);
    const draw = () => {
      if (call !== current) return;
      const sending = micSending();
      const mic = sending ? rms(micAnalyser, buf) : 0;
      const out = current.outAnalyser ? rms(current.outAnalyser, buf) : 0;
      debug.micRms = mic;
      debug.outputRms = out;
      debug.maxOutputRms = Math.max(debug.maxOutputRms, out);
      ui.micLevel.style.width = `${Math.min(100, mic * 400)}%`;
      ui.outLevel.style.width = `${Math.min(100, out * 400)}%`;
      ui.orb.style.setProperty("--level", Math.min(1, Math.max(mic, out) * 5).toFixed(3));
      current.raf = requestAnimationFrame(draw);
    };
    current.raf = requestAnimationFrame(draw);
  }

  // microphone: mute and push-to-talk ----------------------------------------------------------------------
  function micSending() {
    if (!call) return false;
    if (call.muted) return false;
    return !ui.ptt.checked || call.talking;
  }

  function applyMicState() {
    if (!call || !call.mic) return;
    const on = micSending();
    call.mic.getAudioTracks().forEach((t) => { t.enabled = on; });
  }

  function setTalking(on) {
    if (!call || !ui.ptt.checked) return;
    call.talking = on;
    ui.talk.classList.toggle("active", on);
    applyMicState();
  }

  ui.mute.addEventListener("click", () => {
    if (!call) return;
    call.muted = !call.muted;
    ui.mute.setAttribute("aria-pressed", String(call.muted));
    ui.mute.textContent = call.muted ? "Unmute" : "Mute";
    applyMicState();
  });

  ui.ptt.addEventListener("change", () => {
    ui.talk.hidden = !ui.ptt.checked;
    if (call) call.talking = false;
    applyMicState();
  });
  ui.talk.addEventListener("pointerdown", (e) => { e.preventDefault(); ui.talk.setPointerCapture(e.pointerId); setTalking(true); });
  ["pointerup", "pointercancel", "lostpointercapture"].forEach((n) => ui.talk.addEventListener(n, () => setTalking(false)));
  const typing = (el) => el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.isContentEditable);
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && ui.ptt.checked && !e.repeat && !typing(document.activeElement)) { e.preventDefault(); setTalking(true); }
  });
  document.addEventListener("keyup", (e) => { if (e.code === "Space" && ui.ptt.checked) { e.preventDefault(); setTalking(false); } });

  // events from the server ---------------------------------------------------------------------------------
  const bubbles = new Map();    // item_id → <li>
  const userSlots = [];         // placeholders for user turns whose transcript has not arrived yet
  const toolRows = new Map();   // call_id → <li>
  const latencies = [];

  function onEvent(ev) {
    debug.events.push(ev);
    switch (ev.type) {
      case "call": ui.codec.textContent = (ev.codec || "—").toUpperCase(); break;
      case "state": if (call) setStatus(ev.state); break;
      case "speech": if (!ev.speaking) addUserSlot(ev.item_id); break;
      case "transcript": onTranscript(ev); break;
      case "tool_call": onToolCall(ev); break;
      case "tool_result": onToolResult(ev); break;
      case "latency": onLatency(ev); break;
      case "error":
        if (ev.kind === "fatal") showAlert("The agent ran into a problem.", " " + ev.message);
        else addSystem(`Note: ${ev.message}`);
        break;
      case "ended": onEnded(ev.reason); break;
      default: break;
    }
  }

  function addUserSlot(itemId) {
    // The caller's words arrive after the agent may have started answering: keep their place in the list.
    if (itemId && bubbles.has(itemId)) return;
    const li = addBubble("user", "…", true);
    if (itemId) bubbles.set(itemId, li);
    else userSlots.push(li);
    setTimeout(() => {
      if (li.dataset.empty !== "1") return;
      li.remove();
      const i = userSlots.indexOf(li);
      if (i >= 0) userSlots.splice(i, 1);
    }, 15000);
  }

  function onTranscript(ev) {
    let li = bubbles.get(ev.item_id);
    if (!li && ev.role === "user" && userSlots.length) {
      li = userSlots.shift();
      bubbles.set(ev.item_id, li);
    }
    if (!li) {
      li = addBubble(ev.role, "", !ev.final);
      bubbles.set(ev.item_id, li);
    }
    const text = li.querySelector(".text");
    if (li.dataset.empty === "1") { text.textContent = ""; li.dataset.empty = "0"; }
    if (ev.final) {
      if (!ev.text.trim() && ev.role === "user") { li.remove(); return; }
      text.textContent = ev.text;
      li.classList.remove("partial");
    } else {
      text.textContent += ev.text;
    }
    scrollMessages();
  }

  function addBubble(role, text, partial) {
    const empty = ui.messages.querySelector(".empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.className = role + (partial ? " partial" : "");
    li.dataset.role = role;
    li.dataset.empty = text === "…" ? "1" : "0";
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : "Agent";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    li.append(who, body);
    ui.messages.append(li);
    scrollMessages();
    return li;
  }

  function addSystem(text) {
    const empty = ui.messages.querySelector(".empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.className = "system";
    li.textContent = text;
    ui.messages.append(li);
    scrollMessages();
  }

  function scrollMessages() { ui.messages.scrollTop = ui.messages.scrollHeight; }

  function onToolCall(ev) {
    const empty = ui.tools.querySelector(".empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "tname";
    name.textContent = ev.name;
    const args = document.createElement("code");
    args.textContent = ev.arguments;
    const result = document.createElement("code");
    result.className = "pending";
    result.textContent = "running…";
    li.append(name, args, result);
    ui.tools.prepend(li);
    while (ui.tools.children.length > 20) ui.tools.lastElementChild.remove();
    toolRows.set(ev.call_id, result);
  }

  function onToolResult(ev) {
    const result = toolRows.get(ev.call_id);
    if (!result) return;
    let parsed = null;
    try { parsed = JSON.parse(ev.output); } catch (err) { parsed = null; }
    const flat = parsed && typeof parsed === "object" && !Array.isArray(parsed) &&
      Object.values(parsed).every((v) => v === null || typeof v !== "object");
    if (flat && Object.keys(parsed).length) {
      // A flat JSON object reads best as "key: value" lines.
      const dl = document.createElement("dl");
      dl.className = "kv";
      for (const [k, v] of Object.entries(parsed).slice(0, 8)) {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = String(v);
        dl.append(dt, dd);
      }
      result.replaceWith(dl);
      toolRows.set(ev.call_id, dl);
      return;
    }
    result.className = "result";
    result.textContent = "→ " + (ev.output.length > 300 ? ev.output.slice(0, 300) + "…" : ev.output);
  }

  function onLatency(ev) {
    latencies.push(ev.ms);
    const empty = ui.latencies.querySelector(".empty");
    if (empty) empty.remove();
    ui.latLast.textContent = `${Math.round(ev.ms)} ms`;
    const avg = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    ui.latAvg.textContent = `${Math.round(avg)} ms`;
    const scale = Math.max(1500, ...latencies);
    ui.latencies.replaceChildren(...latencies.slice(-8).map((ms, i, shown) => {
      const li = document.createElement("li");
      const n = document.createElement("span");
      n.textContent = `#${latencies.length - shown.length + i + 1}`;
      const bar = document.createElement("span");
      bar.className = "lbar";
      bar.style.width = `${Math.max(3, (ms / scale) * 100)}%`;
      const v = document.createElement("span");
      v.className = "ms";
      v.textContent = `${Math.round(ms)} ms`;
      li.append(n, bar, v);
      return li;
    }));
  }

  function onEnded(reason) {
    if (!call) return;
    call.ended = true;
    teardown(false);
    setStatus("ended");
    addSystem(`Call ended${reason ? ": " + reason : ""}.`);
  }

  // wiring -------------------------------------------------------------------------------------------------
  ui.connect.addEventListener("click", () => { if (call) hangUp(); else start(); });
  ui.clear.addEventListener("click", () => {
    bubbles.clear();
    userSlots.length = 0;
    ui.messages.replaceChildren();
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "Your conversation will appear here.";
    ui.messages.append(li);
  });
  window.addEventListener("pagehide", () => { if (call) teardown(true); });
  if (!window.RTCPeerConnection) {
    ui.connect.disabled = true;
    showAlert("This browser cannot make calls.", " Use a current Chrome, Edge, Firefox or Safari.");
  }
})();
