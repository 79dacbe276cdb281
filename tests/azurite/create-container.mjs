// Creates a blob container in Azurite (or any Azure Blob endpoint) with Shared Key
// authorization, for Sentrace's az:// store test: object_store reads and writes blobs but
// does not create containers. Usage:
//   node create-container.mjs ENDPOINT ACCOUNT KEY_BASE64 CONTAINER
// ENDPOINT is the account's blob URL, e.g. http://127.0.0.1:10000/devstoreaccount1.
// Shared Key string-to-sign: https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
import { createHmac } from "node:crypto";

const [endpoint, account, key, container] = process.argv.slice(2);
if (!endpoint || !account || !key || !container) {
  console.error("usage: node create-container.mjs ENDPOINT ACCOUNT KEY_BASE64 CONTAINER");
  process.exit(2);
}
const version = "2021-08-06";
const date = new Date().toUTCString();
const url = new URL(`${endpoint.replace(/\/$/, "")}/${container}?restype=container`);
// Path-style endpoints (an emulator) carry the account in the path as well.
const resource = `/${account}${url.pathname}\nrestype:container`;
const stringToSign = [
  "PUT", "", "", "", "", "", "", "", "", "", "", "",
  `x-ms-date:${date}\nx-ms-version:${version}`,
  resource,
].join("\n");
const signature = createHmac("sha256", Buffer.from(key, "base64"))
  .update(stringToSign, "utf8")
  .digest("base64");
const res = await fetch(url, {
  method: "PUT",
  headers: {
    "x-ms-date": date,
    "x-ms-version": version,
    authorization: `SharedKey ${account}:${signature}`,
    "content-length": "0",
  },
});
if (res.status !== 201 && res.status !== 409) {
  console.error(`creating container ${container}: HTTP ${res.status}: ${await res.text()}`);
  process.exit(1);
}
console.log(`container ${container}: ${res.status === 201 ? "created" : "exists"}`);
