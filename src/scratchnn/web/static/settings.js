// The Train tab's settings form: a field for each option the server lists (its flag, its help),
// read and written in the option's own type; and a doctor's fix read as settings of that form, for
// its Apply button. No state of its own: train.js owns the form and the run.

export function inputFor(option) {
  const id = `train-opt-${option.name}`;
  let input;
  if (option.type === "bool") {
    input = Object.assign(document.createElement("input"), { type: "checkbox" });
  } else if (option.type === "list" && option.choices) {
    input = Object.assign(document.createElement("select"), { multiple: true, size: 3 });
    for (const choice of option.choices) input.append(new Option(choice, choice));
  } else if (option.choices) {
    input = document.createElement("select");
    for (const choice of option.choices) input.append(new Option(choice, choice));
  } else {
    input = Object.assign(document.createElement("input"), { type: option.type === "list" ? "text" : "number" });
    if (option.type !== "list") input.step = option.type === "int" ? "1" : "any";
    if (option.low !== null) input.min = option.low;
    if (option.high !== null) input.max = option.high;
  }
  input.id = id;
  input.dataset.name = option.name;
  input.dataset.type = option.type;
  input.title = option.help;
  const help = Object.assign(document.createElement("small"), { id: `${id}-help`, className: "help",
                                                                textContent: option.help });
  input.setAttribute("aria-describedby", help.id);
  // named by its flag alone: the label's whole text, help included, was its name, and the help was read twice
  const flag = Object.assign(document.createElement("span"), { id: `${id}-flag`, textContent: option.flag });
  input.setAttribute("aria-labelledby", flag.id);
  const label = Object.assign(document.createElement("label"), { htmlFor: id, title: option.help });
  label.append(flag, input, help);
  if (!input.multiple) return label;
  // deselecting the last choice of a list box takes Ctrl+click, which few know; beside the label,
  // not in it (a click there went to the list box, as any click on a label goes to its input)
  const clear = Object.assign(document.createElement("button"), { type: "button", id: `${id}-clear`,
                                                                 className: "clear", textContent: "None" });
  clear.setAttribute("aria-label", `${option.flag}: none`);
  clear.addEventListener("click", () => writeInput(input, []));
  const both = document.createDocumentFragment();
  both.append(label, clear);
  return both;
}

export function readInput(input) {
  const type = input.dataset.type;
  if (type === "bool") return input.checked;
  if (input.multiple) return [...input.selectedOptions].map((o) => o.value);
  // what is not a number goes as typed, so the server's error quotes it (NaN would reach it as null)
  const number = (text) => (Number.isFinite(Number(text)) ? Number(text) : text);
  if (type === "list") return input.value.split(",").map((v) => v.trim()).filter((v) => v !== "").map(number);
  if (type === "int" || type === "float") return input.value === "" ? null : number(input.value);
  return input.value;
}

export function writeInput(input, value) {
  if (input.dataset.type === "bool") input.checked = Boolean(value);
  else if (input.multiple) for (const o of input.options) o.selected = (value || []).includes(o.value);
  else if (Array.isArray(value)) input.value = value.join(",");
  else input.value = value ?? "";
}

const FLAG_AND_VALUE = /(--[a-z0-9-]+)(?: ([^\s();,]+(?:,[^\s();,]+)*))?/g;  // "--hidden 512,256", "--batchnorm"

// A fix's first choice as [option, value] pairs of the form ("lower --lr from 10 to 0.1; scratchnn
// lr-find ..." -> [[lr, 0.1]]; "--activation relu --init he_normal or --batchnorm" -> activation and
// init); null when it names no setting, or one the form has no field for (the data's are the server's).
// ``info``: the server's /api/train (its options and limits); ``hasField(name)``: the form has one.
export function formChanges(fix, info, hasField) {
  const cut = topLevel(fix).search(/; | or |, /);  // the same length as fix: a cut there is one in fix
  const first = (cut < 0 ? fix : fix.slice(0, cut)).replace(/\([^()]*\)/g, "").trim();  // "(now zeros)": no setting
  const rate = first.match(/^(?:lower|raise) (--[a-z0-9-]+) from \S+ to (\S+)$/);
  // only a choice that is settings: flags named in passing ("more images (--train-size 400 ...)") are not
  const named = rate ? [[rate[1], rate[2]]]
    : /^--/.test(first) ? [...first.matchAll(FLAG_AND_VALUE)].map((m) => [m[1], m[2]]) : [];
  if (!named.length || /scratchnn |[:]/.test(first)) return null;
  const changes = [];
  for (const [flag, text] of named) {
    const negated = flag.startsWith("--no-") && info.options.find((o) => o.flag === `--${flag.slice(5)}`);
    const option = negated || info.options.find((o) => o.flag === flag);
    if (!option || !hasField(option.name)) return null;
    const value = option.type === "bool" ? !negated && text === undefined
      : option.type === "int" || option.type === "float" ? Number(text)
      : option.type === "list" ? (text || "").split(",").map((v) => (Number.isFinite(Number(v)) ? Number(v) : v))
      : text;
    const most = option.name === "epochs" ? info.limits?.epochs : null;  // what this server trains at most
    const fits = option.type === "bool" ? text === undefined
      : typeof value === "number" ? Number.isFinite(value) && !(most && value > most)
      : option.choices ? [value].flat().every((v) => option.choices.includes(v)) : Boolean(text);
    if (!fits) return null;
    changes.push([option, value]);
  }
  return changes;
}

// ``text`` with the separators parentheses hold masked (NUL), so "(--train-size 400, or 0 for all)"
// splits no choice; one character for one, so positions stay those of ``text``.
function topLevel(text) {
  let depth = 0;
  return [...text].map((c) => {
    depth += c === "(" ? 1 : 0;
    const masked = depth > 0 && (c === "," || c === ";" || c === " ") ? "\u0000" : c;
    depth -= c === ")" ? 1 : 0;
    return masked;
  }).join("");
}
