// Kept in a file (not inline) so the page runs under a `script-src 'self'` policy.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,  // the default would call an online validator: nothing leaves this machine
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
