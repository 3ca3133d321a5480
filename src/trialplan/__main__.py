from trialplan.cli import main

main()
