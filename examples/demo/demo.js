// The demo page: two tabs with the same ?room= meet in a private room and chat over a data channel.
// It uses nothing but the SDK the server serves.
import { Identity, PeerClient, PeerConnections, PeerError } from "/client/peer-server.js";

const room = new URLSearchParams(location.search).get("room") || "demo";
const $ = (id) => document.getElementById(id);
$("room").textContent = room;

/** What the page shows and what a test reads: the messages and the open channels, by peer. */
const messages = [];
const channels = new Map();
const members = new Map();

function note(text, kind = "note") {
  const line = document.createElement("p");
  line.className = kind;
  line.textContent = text;
  $("log").append(line);
  $("log").scrollTop = $("log").scrollHeight;
}

function showPeers() {
  $("peers").replaceChildren(
    ...[...members.values()].map((peer) => {
      const item = document.createElement("li");
      const open = channels.get(peer.fingerprint)?.readyState === "open";
      item.textContent = `${peer.alias} (${peer.fingerprint.slice(0, 12)}…)${peer.verified ? " ✓ verified" : ""}${open ? " — connected" : ""}`;
      return item;
    }),
  );
  const open = [...channels.values()].filter((channel) => channel.readyState === "open").length;
  $("channel").textContent = open > 0 ? `open to ${open} peer${open > 1 ? "s" : ""}` : "none";
  // The page's state for people and tests alike: "open" while a data channel is open.
  if (open > 0) document.body.dataset.state = "open";
  else if (client.state === "open") document.body.dataset.state = "registered";
}

// Each tab its own identity: a key pair in IndexedDB under a name only this tab knows (sessionStorage).
const identity = await Identity.stored("peer-demo", { scope: "tab" });
const client = new PeerClient({ identity });
const rtc = new PeerConnections(client);

client.on("state", (state) => {
  $("state").textContent = state;
  if (state !== "open") document.body.dataset.state = state;
  showPeers();
});
client.on("error", (error) => note(`error: ${error.message}`));

/** Connects to a member: both sides make the same negotiated channel, so whoever comes first, one channel links them. */
function link(fingerprint) {
  if (fingerprint === client.fingerprint || channels.has(fingerprint)) return;
  const peerLink = rtc.connect(fingerprint);
  const channel = peerLink.channel("chat", { id: 0 });
  channels.set(fingerprint, channel);
  const name = () => members.get(fingerprint)?.alias ?? fingerprint.slice(0, 12);
  channel.onopen = () => {
    note(`data channel to ${name()} is open`);
    showPeers();
  };
  channel.onclose = () => {
    if (channels.get(fingerprint) === channel) channels.delete(fingerprint);
    showPeers();
  };
  channel.onmessage = ({ data }) => {
    messages.push({ from: fingerprint, text: String(data) });
    note(`${name()}: ${data}`, "them");
  };
  peerLink.on("state", (state) => {
    if (state === "failed") note(`connection to ${name()} failed`);
  });
}

function forget(fingerprint) {
  members.delete(fingerprint);
  channels.get(fingerprint)?.close();
  channels.delete(fingerprint);
  rtc.get(fingerprint)?.close();
  showPeers();
}

function listed(list) {
  for (const peer of list.peers) members.set(peer.fingerprint, peer);
  for (const peer of list.peers) link(peer.fingerprint);
  showPeers();
}

client.on("peer_joined", ({ namespace, payload }) => {
  if (namespace !== room) return;
  members.set(payload.fingerprint, payload);
  note(`${payload.alias} joined`);
  link(payload.fingerprint);
});
client.on("peer_left", ({ namespace, from }) => {
  if (namespace !== room) return;
  note(`${members.get(from)?.alias ?? from.slice(0, 12)} left`);
  forget(from);
});
// A peer that offers before this page heard of it gets its channel here.
rtc.on("link", (peerLink) => link(peerLink.remote));
client.on("restored", ({ lists }) => {
  if (lists[room] !== undefined) listed(lists[room]);
});

/** Whoever comes first creates the room; the other joins it (and a race between the two is settled by the 409). */
async function enter() {
  try {
    return await client.joinRoom(room);
  } catch (error) {
    if (!(error instanceof PeerError) || error.code !== 404) throw error;
  }
  try {
    await client.createRoom({ roomId: room, maxSize: 8 });
    return await client.discover(room);
  } catch (error) {
    if (!(error instanceof PeerError) || error.code !== 409) throw error;
    return client.joinRoom(room);
  }
}

function send(text) {
  let sent = 0;
  for (const channel of channels.values()) {
    if (channel.readyState !== "open") continue;
    channel.send(text);
    sent++;
  }
  if (sent > 0) {
    messages.push({ from: client.fingerprint, text });
    note(`me: ${text}`, "me");
  }
  return sent;
}

$("chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (text !== "" && send(text) > 0) $("text").value = "";
});

try {
  const registered = await client.register();
  $("me").textContent = `${registered.alias}${registered.verified ? " ✓ verified" : ""}`;
  document.body.dataset.fingerprint = registered.fingerprint;
  listed(await enter());
} catch (error) {
  document.body.dataset.state = "error";
  note(`could not enter the room: ${error.message}`);
}

// For the browser tests and the curious: window.demo.send("hi"), window.demo.messages.
window.demo = { client, rtc, messages, send };
