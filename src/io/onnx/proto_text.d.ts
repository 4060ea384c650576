// `import TEXT from './x.proto'` gives the file's text: esbuild's text loader bundles it
// (scripts/build.mjs); this tells the type checker so.
declare module '*.proto' {
  const text: string;
  export default text;
}
