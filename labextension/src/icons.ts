/**
 * The eIQ icons: the sidebar tab, the launcher cards and model files in the file browser.
 */
import { LabIcon } from '@jupyterlab/ui-components';

// a filled badge with the letters, unlike JupyterLab's chip-shaped kernel icon
const EIQ_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">
  <rect class="jp-icon3" fill="#616161" x="1.5" y="4" width="21" height="16" rx="3.5"/>
  <text class="jp-icon-accent0" fill="#fff" x="12" y="15.6" font-family="Arial, Helvetica, sans-serif"
    font-size="9.5" font-weight="bold" text-anchor="middle">eIQ</text>
</svg>`;

const MODEL_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">
  <g class="jp-icon-selectable" fill="#1f4e79">
    <circle cx="3" cy="4" r="1.8"/><circle cx="3" cy="12" r="1.8"/>
    <circle cx="8" cy="8" r="1.8"/><circle cx="13" cy="4" r="1.8"/><circle cx="13" cy="12" r="1.8"/>
    <path d="M3.6 4.7l4 3 .6-.8-4-3zM3.6 11.3l4-3-.6-.8-4 3zM8.4 8.4l4 3 .6-.8-4-3zM8.4 7.6l4-3-.6-.8-4 3z"/>
  </g>
</svg>`;

export const eiqIcon = new LabIcon({ name: 'eiq-lab:eiq', svgstr: EIQ_SVG });
export const modelIcon = new LabIcon({ name: 'eiq-lab:model', svgstr: MODEL_SVG });
