// What a screen reader hears of events the user did not just cause: one polite live region,
// #announce, outside the tabs (heard whatever tab is open; inside the Train tab it was not in the
// accessibility tree while another tab showed).
//
// A browser reads the region once a frame, so text replaced within a frame is never heard: a
// doctor's findings and the run's end line came in one frame and only the end was (the
// accessibility audit). Messages are gathered for GATHER_MS and said together, in order.
// Progress (an evaluation's accuracy) is said at most once every PROGRESS_MS, the latest one: a
// seed run gave four a second, each two seconds to speak.

const GATHER_MS = 250;
const PROGRESS_MS = 8000;
let gathered = [];
let gathering = null;
let progressSaidAt = -Infinity;
let progressWaiting = null;
let latestProgress = "";

function region() { return document.getElementById("announce"); }

function say() {
  gathering = null;
  region().textContent = gathered.map(String).join(" ");
  gathered = [];
}

// Say `text` (with whatever else comes within GATHER_MS). A progress message still waiting its turn
// is dropped: what is said now (a finding, the end) is newer. A `kind` of message is said once, its
// latest: three arrow presses of the keyboard's pen within GATHER_MS say where it is, not where it was.
export function announce(text, kind = null) {
  if (progressWaiting) { clearTimeout(progressWaiting); progressWaiting = null; }
  if (kind) gathered = gathered.filter((said) => said.kind !== kind);
  gathered.push(Object.assign(new String(text), { kind }));
  if (!gathering) gathering = setTimeout(say, GATHER_MS);
}

// Say `text` if nothing of the kind was said in the last PROGRESS_MS; else the latest such text
// once that time is up.
export function announceProgress(text) {
  latestProgress = text;
  const since = performance.now() - progressSaidAt;
  if (progressWaiting) return;
  const sayIt = () => {
    progressWaiting = null;
    progressSaidAt = performance.now();
    gathered.push(latestProgress);
    if (!gathering) gathering = setTimeout(say, GATHER_MS);
  };
  if (since >= PROGRESS_MS) sayIt();
  else progressWaiting = setTimeout(sayIt, PROGRESS_MS - since);
}
