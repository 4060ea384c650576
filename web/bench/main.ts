// placeholder
import { startPage } from '../common/engine.js';
void startPage();
