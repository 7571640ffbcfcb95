// Reads every form body of a JSON list on stdin ({content_type, body: hex}) with Node's
// parsers and prints, per body, the field names each parser found.
import busboy from "busboy";
import querystring from "node:querystring";

function viaBusboy(contentType, body) {
  return new Promise((resolve) => {
    const names = [];
    let parser;
    try {
      parser = busboy({ headers: { "content-type": contentType } });
    } catch {
      resolve(null);
      return;
    }
    parser.on("field", (name) => names.push(name));
    parser.on("file", (name, stream) => {
      names.push(name);
      stream.on("error", () => {});
      stream.resume();
    });
    parser.on("close", () => resolve(names));
    parser.on("error", () => resolve(names));
    parser.end(body);
  });
}

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (d) => (text += d));
  process.stdin.on("end", () => resolve(text));
}));
const out = [];
for (const { content_type, body } of input) {
  const bytes = Buffer.from(body, "hex");
  const readings = { busboy: await viaBusboy(content_type, bytes) };
  if (!content_type.toLowerCase().startsWith("multipart/")) {
    const text = bytes.toString("latin1");
    readings.querystring = Object.keys(querystring.parse(text));
    readings["querystring-semicolon"] = Object.keys(querystring.parse(text, ";"));
    readings.URLSearchParams = [...new URLSearchParams(text).keys()];
  }
  out.push(readings);
}
process.stdout.write(JSON.stringify(out));
