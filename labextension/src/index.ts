/**
 * eiq-lab in JupyterLab: the eIQ sidebar, its commands in the palette, the eIQ menu and the launcher, and
 * "Open in eIQ Model Tool" on model files in the file browser. The notebooks come from the server extension.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  SemanticCommand,
  WidgetTracker,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import {
  IFrame,
  ToolbarButton,
  addIcon,
  buildIcon,
  extensionIcon,
  launchIcon,
  refreshIcon,
  terminalIcon
} from '@jupyterlab/ui-components';
import { Menu } from '@lumino/widgets';

import {
  MODEL_EXTENSIONS,
  NotebookKind,
  SAVED_MODEL_FILE,
  isModelFile,
  notebookFor,
  savedModelsIn,
  voilaUrl
} from './api';
import { eiqIcon, modelIcon } from './icons';
import { EiqSidebar } from './sidebar';

/** The eIQ commands (palette category "eIQ", the eIQ menu, the sidebar and the launcher). */
export namespace CommandIDs {
  export const newProject = 'eiq:new-project';
  export const openPortal = 'eiq:open-portal';
  export const openPortalInBrowser = 'eiq:open-portal-in-browser';
  export const modelTool = 'eiq:model-tool';
  export const plugins = 'eiq:plugins';
  export const commandLine = 'eiq:command-line';
  export const openInModelTool = 'eiq:open-in-model-tool';
}

const CATEGORY = 'eIQ';
const TERMINAL_COMMAND = 'terminal:create-new';
const RUN_ALL_COMMAND = 'notebook:run-all-cells';
/** What the Portal's frame may do: run Voila's page (scripts, same-origin kernel connection), forms, downloads. */
const PORTAL_SANDBOX: IFrame.SandboxExceptions[] = [
  'allow-scripts',
  'allow-same-origin',
  'allow-forms',
  'allow-modals',
  'allow-popups',
  'allow-downloads'
];

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function activate(
  app: JupyterFrontEnd,
  docManager: IDocumentManager,
  palette: ICommandPalette | null,
  mainMenu: IMainMenu | null,
  restorer: ILayoutRestorer | null,
  launcher: ILauncher | null,
  fileBrowser: IDefaultFileBrowser | null
): void {
  const { commands, shell } = app;
  const portals = new WidgetTracker<MainAreaWidget<IFrame>>({ namespace: 'eiq-portal' });
  const savedModels = new Set<string>();

  /** Run `work`, showing its failure in a dialog (the server's message names the file and the problem). */
  async function guarded<T>(title: string, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      await showErrorMessage(title, message(error));
      return undefined;
    }
  }

  /** Open the notebook of `kind` in JupyterLab; a notebook not open yet runs its cells so its panel shows. */
  async function openNotebook(kind: NotebookKind, options: { directory?: string; model?: string } = {}) {
    const reply = await notebookFor(kind, options);
    const already = docManager.findWidget(reply.path);
    const widget = docManager.openOrReveal(reply.path, 'Notebook');
    if (!widget || already) {
      return widget;
    }
    await widget.context.ready;
    await widget.context.sessionContext.ready;
    if (commands.hasCommand(RUN_ALL_COMMAND)) {
      // named by id: the notebook tracker's current widget may still be the one focused before
      await commands.execute(RUN_ALL_COMMAND, { [SemanticCommand.WIDGET]: widget.id });
    }
    return widget;
  }

  /** The model selected in the file browser: a model file, or a SavedModel folder (or its saved_model.pb). */
  function selectedModel(): string | null {
    const item = fileBrowser?.selectedItems().next();
    if (!item || item.done) {
      return null;
    }
    const model = item.value;
    if (model.type === 'directory') {
      return savedModels.has(model.path) ? model.path : null;
    }
    if (model.name === SAVED_MODEL_FILE && PathExt.dirname(model.path)) {
      return PathExt.dirname(model.path);
    }
    return isModelFile(model.name) ? model.path : null;
  }

  function openPortalTab(url: string): MainAreaWidget<IFrame> {
    const content = new IFrame({ sandbox: PORTAL_SANDBOX });
    content.url = url;
    content.addClass('eiq-portal-frame');
    const widget = new MainAreaWidget({ content });
    widget.id = 'eiq-portal';
    widget.addClass('eiq-portal-tab');
    widget.title.label = 'eIQ Portal';
    widget.title.icon = eiqIcon;
    widget.title.closable = true;
    widget.toolbar.addItem(
      'reload',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Reload the Portal (restarts its kernel)',
        onClick: () => content.node.querySelector('iframe')?.contentWindow?.location.reload()
      })
    );
    widget.toolbar.addItem(
      'open-in-browser',
      new ToolbarButton({
        icon: launchIcon,
        tooltip: 'Open the Portal in a new browser tab',
        onClick: () => window.open(url, '_blank')
      })
    );
    void portals.add(widget);
    shell.add(widget, 'main');
    return widget;
  }

  commands.addCommand(CommandIDs.newProject, {
    label: args => (args.isPalette ? 'New eIQ Project' : 'New Project'),
    caption: 'A new notebook with the eIQ Home panel: create a project or open a recent one',
    icon: args => (args.isPalette ? undefined : addIcon),
    execute: () =>
      guarded('New eIQ project', () => openNotebook('home', { directory: fileBrowser?.model.path ?? '' }))
  });

  commands.addCommand(CommandIDs.openPortal, {
    label: args => (args.isPalette ? 'Open eIQ Portal' : 'Open Portal'),
    caption: 'The eIQ Portal (Voila) in a JupyterLab tab',
    icon: args => (args.isPalette ? undefined : eiqIcon),
    execute: () =>
      guarded('eIQ Portal', async () => {
        const reply = await notebookFor('portal');
        const open = portals.find(widget => !widget.isDisposed);
        if (open) {
          shell.activateById(open.id);
          return open;
        }
        const widget = openPortalTab(voilaUrl(reply.path));
        shell.activateById(widget.id);
        return widget;
      })
  });

  commands.addCommand(CommandIDs.openPortalInBrowser, {
    label: args => (args.isPalette ? 'Open eIQ Portal in a Browser Tab' : 'Open Portal in a Browser Tab'),
    caption: 'The eIQ Portal (Voila) in a new browser tab',
    icon: args => (args.isPalette ? undefined : launchIcon),
    execute: async () => {
      // opened now, while the click still counts as the user's, so pop-up blockers let it through
      const tab = window.open('', '_blank');
      try {
        const url = voilaUrl((await notebookFor('portal')).path);
        if (tab) {
          tab.location.href = url;
        } else {
          window.open(url, '_blank');
        }
      } catch (error) {
        tab?.close();
        await showErrorMessage('eIQ Portal', message(error));
      }
    }
  });

  commands.addCommand(CommandIDs.modelTool, {
    label: args => (args.isPalette ? 'Open eIQ Model Tool' : 'Model Tool'),
    caption: 'Open a model (Keras, SavedModel, TFLite, ONNX): graph, layers, conversion, profiling',
    icon: args => (args.isPalette ? undefined : buildIcon),
    execute: args => {
      const model = (args.path as string | undefined) || undefined;
      return guarded('eIQ Model Tool', () => openNotebook('modeltool', model ? { model } : {}));
    }
  });

  commands.addCommand(CommandIDs.openInModelTool, {
    label: 'Open in eIQ Model Tool',
    caption: 'Open this model in the eIQ Model Tool',
    icon: modelIcon,
    isVisible: () => selectedModel() !== null,
    execute: () => {
      const model = selectedModel();
      return model === null ? undefined : commands.execute(CommandIDs.modelTool, { path: model });
    }
  });

  commands.addCommand(CommandIDs.plugins, {
    label: args => (args.isPalette ? 'Open eIQ Plugins' : 'Plugins'),
    caption: 'The converter plug-ins: readiness, information, install and uninstall',
    icon: args => (args.isPalette ? undefined : extensionIcon),
    execute: () => guarded('eIQ plug-ins', () => openNotebook('plugins'))
  });

  commands.addCommand(CommandIDs.commandLine, {
    label: args => (args.isPalette ? 'Open eIQ Command Line' : 'Command Line'),
    caption: 'A terminal in the current folder, for the eiq commands (eiq, eiq-converter, eiq-runner, ...)',
    icon: args => (args.isPalette ? undefined : terminalIcon),
    execute: () =>
      guarded('eIQ command line', async () => {
        if (!commands.hasCommand(TERMINAL_COMMAND) || !app.serviceManager.terminals.isAvailable()) {
          throw new Error('Terminals are not available on this Jupyter server (terminals are disabled).');
        }
        return commands.execute(TERMINAL_COMMAND, { cwd: fileBrowser?.model.path ?? '' });
      })
  });

  // model files: an icon in the file browser, and the context-menu item on them
  for (const extension of MODEL_EXTENSIONS) {
    let fileType = app.docRegistry.getFileTypesForPath(`model${extension}`)[0];
    if (!fileType) {
      app.docRegistry.addFileType({
        name: `eiq-model${extension.replace('.', '-')}`,
        displayName: `Model (${extension})`,
        extensions: [extension],
        mimeTypes: ['application/octet-stream'],
        fileFormat: 'base64',
        contentType: 'file',
        icon: modelIcon
      });
      fileType = app.docRegistry.getFileTypesForPath(`model${extension}`)[0];
    }
    app.contextMenu.addItem({
      command: CommandIDs.openInModelTool,
      selector: `.jp-DirListing-item[data-file-type="${fileType.name}"]`,
      rank: 3
    });
  }
  // SavedModel folders: the server lists those of the browser's folder each time its listing is refreshed
  app.contextMenu.addItem({
    command: CommandIDs.openInModelTool,
    selector: '.jp-DirListing-item[data-isdir="true"]',
    rank: 3
  });
  if (fileBrowser) {
    let pending = false;
    const refresh = async () => {
      if (pending) {
        return;
      }
      pending = true;
      const directory = fileBrowser.model.path;
      try {
        const found = await savedModelsIn(directory);
        for (const path of [...savedModels]) {
          if (PathExt.dirname(path) === directory) {
            savedModels.delete(path);
          }
        }
        found.forEach(path => savedModels.add(path));
      } catch (error) {
        console.warn('eiq-lab: could not list the SavedModel folders of', directory, error);
      } finally {
        pending = false;
      }
    };
    fileBrowser.model.refreshed.connect(() => void refresh());
  }

  const sidebar = new EiqSidebar(commands, [
    {
      command: CommandIDs.newProject,
      name: 'new-project',
      label: 'New project',
      caption: 'A notebook with the Home panel, in the current folder',
      icon: addIcon
    },
    {
      command: CommandIDs.openPortal,
      name: 'open-portal',
      label: 'Open Portal',
      caption: 'Bring your own data: import, label, train, export',
      icon: eiqIcon,
      extra: {
        command: CommandIDs.openPortalInBrowser,
        name: 'open-portal-in-browser',
        title: 'Open the Portal in a new browser tab',
        icon: launchIcon
      }
    },
    {
      command: CommandIDs.modelTool,
      name: 'model-tool',
      label: 'Model Tool',
      caption: 'Bring your own model: inspect, convert, profile',
      icon: buildIcon
    },
    {
      command: CommandIDs.plugins,
      name: 'plugins',
      label: 'Plugins',
      caption: 'Converter plug-ins: readiness, install, uninstall',
      icon: extensionIcon
    },
    {
      command: CommandIDs.commandLine,
      name: 'command-line',
      label: 'Command line',
      caption: 'A terminal in the current folder: eiq, eiq-converter, ...',
      icon: terminalIcon
    }
  ]);
  shell.add(sidebar, 'left', { rank: 150, type: 'eIQ' });

  const everyCommand = [
    CommandIDs.newProject,
    CommandIDs.openPortal,
    CommandIDs.openPortalInBrowser,
    CommandIDs.modelTool,
    CommandIDs.plugins,
    CommandIDs.commandLine
  ];
  if (palette) {
    for (const command of everyCommand) {
      palette.addItem({ command, category: CATEGORY, args: { isPalette: true } });
    }
  }
  if (mainMenu) {
    const menu = new Menu({ commands });
    menu.id = 'eiq-menu';
    menu.title.label = 'eIQ';
    everyCommand.forEach((command, index) => {
      if (index === 1 || index === 3 || index === 5) {
        menu.addItem({ type: 'separator' });
      }
      menu.addItem({ command });
    });
    mainMenu.addMenu(menu, true, { rank: 900 });
  }
  if (launcher) {
    [CommandIDs.openPortal, CommandIDs.newProject, CommandIDs.modelTool, CommandIDs.plugins].forEach(
      (command, rank) => launcher.add({ command, category: CATEGORY, rank })
    );
  }
  if (restorer) {
    restorer.add(sidebar, 'eiq-sidebar');
    void restorer.restore(portals, { command: CommandIDs.openPortal, name: () => 'eiq-portal' });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'eiq-lab:plugin',
  description: 'The eIQ sidebar, commands, menu and launcher, and model files opened in the eIQ Model Tool.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ICommandPalette, IMainMenu, ILayoutRestorer, ILauncher, IDefaultFileBrowser],
  activate
};

export default plugin;
