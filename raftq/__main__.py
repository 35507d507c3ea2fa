from raftq.cli import main

main()
