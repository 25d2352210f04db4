// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "bench/results/**", "coverage/**", "dist/**", "client/dist/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": ["error", { allow: ["error"] }],
    },
  },
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } },
  },
  {
    files: ["test/**", "bench/**"],
    rules: { "no-console": "off" },
  },
  {
    // The examples are plain JavaScript modules served to browsers as they are.
    files: ["examples/**/*.js"],
    languageOptions: { globals: { document: "readonly", window: "readonly", location: "readonly", URLSearchParams: "readonly" } },
  },
);
