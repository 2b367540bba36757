/**
 * The eIQ panel in the left sidebar: one button per eIQ command, each with a line saying what it opens.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { eiqIcon } from './icons';

/** A sidebar button: the command it runs, its label, its explanation and icon; `extra` is a small side button. */
export interface ISidebarButton {
  command: string;
  label: string;
  caption: string;
  icon: LabIcon;
  name: string;
  extra?: { command: string; title: string; icon: LabIcon; name: string };
}

/** The eIQ sidebar panel. */
export class EiqSidebar extends Widget {
  constructor(commands: CommandRegistry, buttons: ISidebarButton[]) {
    super();
    this._commands = commands;
    this.id = 'eiq-sidebar';
    this.addClass('eiq-sidebar');
    this.title.icon = eiqIcon;
    this.title.caption = 'eIQ';

    const header = document.createElement('header');
    header.className = 'eiq-sidebar-header';
    const logo = document.createElement('span');
    eiqIcon.element({ container: logo, className: 'eiq-sidebar-logo' });
    const title = document.createElement('h2');
    title.textContent = 'eIQ';
    const subtitle = document.createElement('p');
    subtitle.textContent = 'Embedded machine learning: bring your own data or your own model.';
    header.append(logo, title, subtitle);
    this.node.appendChild(header);

    const list = document.createElement('ul');
    list.className = 'eiq-sidebar-list';
    for (const spec of buttons) {
      const item = document.createElement('li');
      item.className = 'eiq-sidebar-item';
      item.appendChild(this._button(spec));
      if (spec.extra) {
        const extra = document.createElement('button');
        extra.className = `eiq-sidebar-extra eiq-sidebar-${spec.extra.name}`;
        extra.title = spec.extra.title;
        extra.setAttribute('aria-label', spec.extra.title);
        spec.extra.icon.element({ container: extra });
        extra.addEventListener('click', () => this._run(spec.extra!.command));
        item.appendChild(extra);
      }
      list.appendChild(item);
    }
    this.node.appendChild(list);
  }

  private _button(spec: ISidebarButton): HTMLButtonElement {
    const button = document.createElement('button');
    button.className = `eiq-sidebar-button eiq-sidebar-${spec.name}`;
    button.dataset.command = spec.command;
    const icon = document.createElement('span');
    icon.className = 'eiq-sidebar-button-icon';
    spec.icon.element({ container: icon });
    const text = document.createElement('span');
    text.className = 'eiq-sidebar-button-text';
    const label = document.createElement('span');
    label.className = 'eiq-sidebar-button-label';
    label.textContent = spec.label;
    const caption = document.createElement('span');
    caption.className = 'eiq-sidebar-button-caption';
    caption.textContent = spec.caption;
    text.append(label, caption);
    button.append(icon, text);
    button.addEventListener('click', () => this._run(spec.command));
    return button;
  }

  private _run(command: string): void {
    this._commands.execute(command).catch(error => {
      void showErrorMessage('eIQ', error instanceof Error ? error.message : String(error));
    });
  }

  private _commands: CommandRegistry;
}
