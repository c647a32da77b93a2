/**
 * Checks an answer of the admin service against its OpenAPI 3.1 document: the path and method
 * must be an operation, the status one of its responses, the content type one the response
 * declares, and a JSON body must validate (ajv's JSON Schema 2020-12, the dialect of 3.1).
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { Answer } from "./support.js";

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, Response> }>>;
};
type Response = { content?: Record<string, { schema?: unknown }> };

const escapePointer = (text: string) => text.replaceAll("~", "~0").replaceAll("/", "~1");

export class OpenApiChecker {
  readonly doc: Doc;
  readonly #ajv: Ajv2020;
  readonly #templates: Array<{ template: string; pattern: RegExp }>;
  /** Every (method path status) checked, for the coverage test. */
  readonly seen = new Set<string>();

  constructor(doc: unknown) {
    this.doc = doc as Doc;
    this.#ajv = new Ajv2020({ strict: false, allErrors: true });
    this.#ajv.addFormat("date-time", {
      type: "string",
      validate: (text: string) =>
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(text) &&
        !Number.isNaN(Date.parse(text)),
    });
    this.#ajv.addSchema(doc as object, "openapi");
    this.#templates = Object.keys(this.doc.paths).map((template) => ({
      template,
      // A {key} is one percent-encoded segment, or (GET only, by our router) any rest of the
      // path; matching the encoded form is what a client following the document sends.
      pattern: new RegExp(
        `^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`,
      ),
    }));
  }

  /** The operation's path template for a request path (relative to the server URL). */
  template(path: string): string | undefined {
    return this.#templates.find(({ pattern }) => pattern.test(path))?.template;
  }

  check(method: string, path: string, answer: Answer): void {
    const template = this.template(path);
    assert.ok(template, `${method} ${path} is not a path of the OpenAPI document`);
    const operation = this.doc.paths[template]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${template} is not an operation of the OpenAPI document`);
    const status = String(answer.status);
    const response = operation.responses[status];
    assert.ok(
      response,
      `${method} ${template} answered ${status}, which the OpenAPI document does not list (${answer.text.slice(0, 200)})`,
    );
    this.seen.add(`${method.toUpperCase()} ${template} ${status}`);
    const type = (answer.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    if (!response.content) {
      assert.equal(answer.text, "", `${method} ${template} ${status} should have no body`);
      return;
    }
    assert.ok(
      type in response.content,
      `${method} ${template} ${status} has content type ${type}; the document lists ${Object.keys(response.content).join(", ")}`,
    );
    if (type !== "application/json") return;
    const pointer = [
      "paths",
      template,
      method.toLowerCase(),
      "responses",
      status,
      "content",
      type,
      "schema",
    ]
      .map(escapePointer)
      .join("/");
    const validate = this.#ajv.getSchema(`openapi#/${pointer}`);
    assert.ok(validate, `no schema at ${pointer}`);
    const valid = validate(answer.body);
    assert.ok(
      valid,
      `${method} ${template} ${status} does not match its schema: ${this.#ajv.errorsText(validate.errors)}\n${answer.text.slice(0, 500)}`,
    );
  }
}
