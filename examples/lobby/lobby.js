// A matchmaking lobby: join a namespace, ask for a match in pairs, connect to the matched partner.
// ?lobby=NAME picks the namespace, ?mode=... the criteria, ?auto=1 looks for a partner at once.
import { Identity, PeerClient, PeerConnections } from "/client/peer-server.js";

const params = new URLSearchParams(location.search);
const lobby = params.get("lobby") || "lobby";
const mode = params.get("mode") || "casual";
const $ = (id) => document.getElementById(id);
$("lobby").textContent = `${lobby} (${mode})`;

const messages = [];
let channel;
let partner;

function note(text) {
  const line = document.createElement("p");
  line.textContent = text;
  $("log").append(line);
  $("log").scrollTop = $("log").scrollHeight;
}

const client = new PeerClient({ identity: await Identity.stored("peer-lobby", { scope: "tab" }) });
// Links are made on demand: an offer from the partner that arrives before this page's own `matched`
// event gets its link at once, and connect() below then returns that same link.
const rtc = new PeerConnections(client);
client.on("state", (state) => ($("state").textContent = state));
client.on("error", (error) => note(`error: ${error.message}`));
client.on("peer_joined", () => count(1));
client.on("peer_left", ({ from }) => {
  count(-1);
  if (from === partner?.fingerprint) {
    note(`${partner.alias} left`);
    channel?.close();
  }
});

let members = 0;
function count(change) {
  members += change;
  $("count").textContent = String(members);
}

/** The group of two formed: connect to the other one (both sides do, and perfect negotiation settles who offers). */
client.on("matched", ({ payload }) => {
  partner = payload.peers.find((peer) => peer.fingerprint !== client.fingerprint);
  if (partner === undefined) return;
  $("partner").textContent = partner.alias;
  document.body.dataset.state = "matched";
  document.body.dataset.partner = partner.fingerprint;
  note(`matched with ${partner.alias}; connecting…`);
  channel = rtc.connect(partner.fingerprint).channel("lobby", { id: 0 });
  channel.onopen = () => {
    note(`connected to ${partner.alias}`);
    document.body.dataset.state = "open";
  };
  channel.onclose = () => {
    document.body.dataset.state = "registered";
    $("partner").textContent = "none";
    $("find").disabled = false;
  };
  channel.onmessage = ({ data }) => {
    messages.push({ from: partner.fingerprint, text: String(data) });
    note(`${partner.alias}: ${data}`);
  };
});

async function find() {
  $("find").disabled = true;
  const result = await client.match(lobby, 2, { mode });
  if (result.status === "waiting") {
    document.body.dataset.state = "waiting";
    note("waiting for a partner…");
  }
}

function send(text) {
  if (channel?.readyState !== "open") return false;
  channel.send(text);
  messages.push({ from: client.fingerprint, text });
  note(`me: ${text}`);
  return true;
}

$("find").addEventListener("click", () => find().catch((error) => note(`match failed: ${error.message}`)));
$("chat").addEventListener("submit", (event) => {
  event.preventDefault();
  if (send($("text").value.trim())) $("text").value = "";
});

try {
  const registered = await client.register();
  document.body.dataset.fingerprint = registered.fingerprint;
  const list = await client.join(lobby, { appType: "lobby-example" });
  count(list.total);
  document.body.dataset.state = "registered";
  $("find").disabled = false;
  if (params.get("auto") === "1") await find();
} catch (error) {
  document.body.dataset.state = "error";
  note(`could not enter the lobby: ${error.message}`);
}

window.lobby = { client, rtc, messages, send, find };
