"""The zoos: small models the package ships, each made by one recorded command.

| module | its job |
| --- | --- |
| registry | the zoos (where each ships, its recipe, where the demo installs it, its command) |
| recipes | each zoo's recipe: which models, with which fit options |
| recipe | what a recipe is: a grid of backbones and attention kinds, extra models, the data |
| phantoms | draw a phantom zoo's training and evaluation phantoms |
| training | train a zoo's models and ship them |
| ship | 8-bit copies of trained runs in the zoo folder |
| trust | fit a shipped model's OOD description, temperatures and thresholds again |
| install | copy a zoo (and its shipped evaluation) into a runs folder |
| evaluate | score installed models: lesion masks on the phantom, held-out patients on films |
| record | ZOO.json: the recipe, the command and what each model measured |
| demo_folder | the demo: the phantom zoo evaluated on films drawn here, the others beside it |
| make | `demo --retrain / --reship / --refit-trust`: the steps above in order |

`train.commands.demo` parses the flags and calls these.
"""
