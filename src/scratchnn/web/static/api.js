// The JSON API of `scratchnn serve`; a failed request throws an Error carrying the server's one-line detail.

export const NOT_ANSWERING = "The scratchnn server is not answering: is 'scratchnn serve' still running? "
  + "Try again once it is.";

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
    throw Object.assign(new Error(body.detail || `${response.status} ${response.statusText}`),
                        { status: response.status });
  }
  return body;
}

export const postJSON = (path, data) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
