// The JSON API of `scratchnn serve`; a failed request throws an Error carrying the server's one-line detail.

export const NOT_ANSWERING = "The scratchnn server is not answering: is 'scratchnn serve' still running? "
  + "Try again once it is.";

// What a status without our JSON detail means: the server's connection cap (uvicorn's plain-text 503)
// or a proxy in front of it that could not reach it
const WITHOUT_DETAIL = {
  503: "The scratchnn server is busy (too many connections at once): try again in a moment.",
  502: NOT_ANSWERING,
  504: NOT_ANSWERING,
};

export async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {  // no answer at all: the browser's own words ("Failed to fetch") say nothing useful
    if (error.name === "AbortError") throw error;
    throw new Error(NOT_ANSWERING);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const said = body.detail || WITHOUT_DETAIL[response.status] || `${response.status} ${response.statusText}`;
    throw Object.assign(new Error(said), { status: response.status });
  }
  return body;
}

export const postJSON = (path, data) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
