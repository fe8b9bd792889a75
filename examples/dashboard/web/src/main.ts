// The dashboard page: a Vue 3 app on the client generated from the Rust hub traits
// (`dashboard-client`, installed from ../client by npm).
import { createApp } from "vue";
import App from "./App.vue";
import "./style.css";

createApp(App).mount("#app");
